using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using LlmProxy.Tenancy;

namespace LlmProxy.Benchmarks;

/// <summary>
/// A few minutes of mixed traffic through a real gateway process with every feature on (Redis cache and rate
/// limits, DynamoDB usage ledger on dynalite, two simulated deployments), while faults are injected: primary
/// upstream errors, a Redis restart, a dynalite restart, fallback errors. Reports requests sent, gateway 5xx
/// (target 0 while one deployment lives), usage records against requests (target equal) and the gateway's RSS
/// over time (target: no growth trend). Loopback only; every process it starts is stopped at the end.
/// </summary>
internal static class SoakTest
{
    private const string TenantKey = "sk-soak-tenant-0123456789";
    private const string AdminKey = "sk-soak-admin-0123456789";

    public static async Task<int> RunAsync(string[] args)
    {
        var minutes = ReadDouble(args, "--minutes", 3);
        var concurrency = (int)ReadDouble(args, "--concurrency", 16);
        var root = FindRoot();
        var loadBefore = File.ReadAllText("/proc/loadavg").Trim();
        using var processes = new ProcessSet();
        var work = Directory.CreateTempSubdirectory("llmproxy-soak-");

        var redisPort = FreePort();
        processes.Start("redis", "redis-server", ["--port", $"{redisPort}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
        var dynalitePort = FreePort();
        var dynaliteCli = DynaliteCli(root);
        var dynaliteData = Path.Combine(work.FullName, "dynalite");
        processes.Start("dynalite", "node", [dynaliteCli, "--port", $"{dynalitePort}", "--path", dynaliteData]);
        var simulatorDll = Path.Combine(root, "src/LlmProxy.Simulator/bin/Release/net10.0/LlmProxy.Simulator.dll");
        var primaryPort = FreePort();
        var fallbackPort = FreePort();
        processes.Start("primary", "dotnet", [simulatorDll, "--urls", $"http://127.0.0.1:{primaryPort}", "--latency-ms", "5", "--chunk-delay-ms", "2"]);
        processes.Start("fallback", "dotnet", [simulatorDll, "--urls", $"http://127.0.0.1:{fallbackPort}", "--latency-ms", "5", "--chunk-delay-ms", "2"]);
        await WaitForPortAsync(redisPort);
        await WaitForPortAsync(dynalitePort);
        await WaitForPortAsync(primaryPort);
        await WaitForPortAsync(fallbackPort);

        var config = Path.Combine(work.FullName, "soak.json");
        await File.WriteAllTextAsync(config, GatewayConfig(redisPort, dynalitePort, primaryPort, fallbackPort, Path.Combine(work.FullName, "data")));
        var gatewayPort = FreePort();
        var gateway = processes.Start("gateway", "dotnet",
            [Path.Combine(root, "src/LlmProxy/bin/Release/net10.0/LlmProxy.dll"), "--urls", $"http://127.0.0.1:{gatewayPort}"],
            new()
            {
                ["LLMPROXY_CONFIG"] = config,
                ["AWS_ACCESS_KEY_ID"] = "soak",
                ["AWS_SECRET_ACCESS_KEY"] = "soak",
                ["AWS_REGION"] = "us-east-1",
                ["Logging__LogLevel__Default"] = "Warning",
            },
            workingDirectory: root);
        await WaitForPortAsync(gatewayPort, TimeSpan.FromSeconds(60));

        using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = concurrency * 2 })
        {
            BaseAddress = new Uri($"http://127.0.0.1:{gatewayPort}"),
            Timeout = TimeSpan.FromSeconds(60),
        };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", TenantKey);
        using var control = new HttpClient();

        var duration = TimeSpan.FromMinutes(minutes);
        var started = Stopwatch.StartNew();
        var stats = new TrafficStats();
        var rss = new List<(double Minutes, double Megabytes)>();
        using var stop = new CancellationTokenSource(duration);

        var faults = RunFaultScheduleAsync(duration, stop.Token, control, primaryPort, fallbackPort, processes, redisPort, dynalitePort, dynaliteCli, dynaliteData);
        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                rss.Add((started.Elapsed.TotalMinutes, ReadRssMegabytes(gateway.Id)));
                try { await Task.Delay(TimeSpan.FromSeconds(5), stop.Token); } catch (OperationCanceledException) { }
            }
        });
        var workers = Enumerable.Range(0, concurrency).Select(i => Task.Run(() => WorkerAsync(client, i, stats, stop.Token))).ToArray();
        await Task.WhenAll(workers);
        await sampler;
        await faults;
        rss.Add((started.Elapsed.TotalMinutes, ReadRssMegabytes(gateway.Id)));

        // Let the ledger drain (dynalite came back), then read the tenant's totals from the usage API.
        var from = DateTimeOffset.UtcNow.AddHours(-1).ToString("O", CultureInfo.InvariantCulture);
        var to = DateTimeOffset.UtcNow.AddHours(1).ToString("O", CultureInfo.InvariantCulture);
        long records = -1;
        var drainDeadline = Stopwatch.StartNew();
        while (drainDeadline.Elapsed < TimeSpan.FromSeconds(90))
        {
            records = await CountRecordsAsync(control, gatewayPort, from, to);
            if (records >= stats.Sent)
            {
                break;
            }
            await Task.Delay(TimeSpan.FromSeconds(2));
        }

        var report = new StringBuilder();
        report.AppendLine(CultureInfo.InvariantCulture, $"Soak: {minutes} min, {concurrency} concurrent clients, mixed streamed/non-streamed, 30 % repeated prompts (cache), faults injected");
        report.AppendLine(CultureInfo.InvariantCulture, $"machine: {Environment.ProcessorCount} cores, load average before {loadBefore}, after {File.ReadAllText("/proc/loadavg").Trim()}");
        report.AppendLine(CultureInfo.InvariantCulture, $"requests sent            {stats.Sent}");
        foreach (var (status, count) in stats.ByStatus.OrderBy(p => p.Key))
        {
            report.AppendLine(CultureInfo.InvariantCulture, $"  status {status,-16} {count}");
        }
        report.AppendLine(CultureInfo.InvariantCulture, $"gateway 5xx              {stats.ServerErrors} (target 0 while one deployment lives)");
        report.AppendLine(CultureInfo.InvariantCulture, $"transport errors         {stats.TransportErrors}");
        report.AppendLine(CultureInfo.InvariantCulture, $"usage records            {records} (target = requests sent: {(records == stats.Sent ? "equal" : "DIFFERENT")})");
        report.AppendLine(CultureInfo.InvariantCulture, $"gateway RSS MB           start {rss.First().Megabytes:F1}, end {rss.Last().Megabytes:F1}, max {rss.Max(r => r.Megabytes):F1}");
        report.AppendLine(CultureInfo.InvariantCulture, $"RSS trend, second half   {Slope(rss.Where(r => r.Minutes >= minutes / 2).ToList()):F2} MB/min");
        // The verdict reads the last third only: the heap grows while the GC sizes its generations and the rate-limit
        // windows fill (60 s of history), then a gateway without a leak levels off. 1 MB/min is far below what a leak of
        // even a few bytes per request shows at this request rate (hundreds a second), and above sampling noise.
        var lastThirdTrend = Slope(rss.Where(r => r.Minutes >= minutes * 2 / 3).ToList());
        var rssFlat = lastThirdTrend <= MaxFlatRssTrendMegabytesPerMinute;
        report.AppendLine(CultureInfo.InvariantCulture, $"RSS trend, last third    {lastThirdTrend:F2} MB/min (target <= {MaxFlatRssTrendMegabytesPerMinute:F1}: {(rssFlat ? "flat" : "GROWING")})");
        report.AppendLine("fault timeline:");
        foreach (var line in FaultLog)
        {
            report.AppendLine("  " + line);
        }
        Console.Write(report.ToString());
        var ok = stats.ServerErrors == 0 && stats.TransportErrors == 0 && records == stats.Sent && rssFlat;
        Console.WriteLine(ok ? "SOAK OK" : "SOAK FAILED");
        try { work.Delete(recursive: true); } catch (IOException) { }
        return ok ? 0 : 1;
    }

    private static readonly List<string> FaultLog = [];

    private const double MaxFlatRssTrendMegabytesPerMinute = 1.0;

    private static void Log(TimeSpan at, string what)
    {
        lock (FaultLog)
        {
            FaultLog.Add($"{at.TotalSeconds,6:F0}s {what}");
        }
    }

    private static async Task RunFaultScheduleAsync(TimeSpan duration, CancellationToken stop, HttpClient control, int primaryPort, int fallbackPort,
        ProcessSet processes, int redisPort, int dynalitePort, string dynaliteCli, string dynaliteData)
    {
        var clock = Stopwatch.StartNew();
        async Task At(double fraction) { var wait = duration * fraction - clock.Elapsed; if (wait > TimeSpan.Zero) { await Task.Delay(wait); } }

        await At(0.15);
        await SetFaultAsync(control, primaryPort, """{"kind":"status","statusCode":500}""");
        Log(clock.Elapsed, "primary answers 500 (fallback healthy)");
        await At(0.25);
        await control.DeleteAsync($"http://127.0.0.1:{primaryPort}/_sim/faults");
        Log(clock.Elapsed, "primary healthy again");

        await At(0.35);
        processes.Kill("redis");
        Log(clock.Elapsed, "redis-server killed");
        await Task.Delay(TimeSpan.FromSeconds(5));
        processes.Start("redis", "redis-server", ["--port", $"{redisPort}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
        await WaitForPortAsync(redisPort);
        Log(clock.Elapsed, "redis-server restarted");

        await At(0.5);
        processes.Kill("dynalite");
        Log(clock.Elapsed, "dynalite killed");
        await Task.Delay(TimeSpan.FromSeconds(8));
        processes.Start("dynalite", "node", [dynaliteCli, "--port", $"{dynalitePort}", "--path", dynaliteData]);
        await WaitForPortAsync(dynalitePort);
        Log(clock.Elapsed, "dynalite restarted");

        await At(0.65);
        await SetFaultAsync(control, primaryPort, """{"kind":"reset"}""");
        Log(clock.Elapsed, "primary resets connections");
        await At(0.72);
        await control.DeleteAsync($"http://127.0.0.1:{primaryPort}/_sim/faults");
        Log(clock.Elapsed, "primary healthy again");

        await At(0.8);
        await SetFaultAsync(control, fallbackPort, """{"kind":"status","statusCode":503}""");
        Log(clock.Elapsed, "fallback answers 503 (primary healthy)");
        await At(0.88);
        await control.DeleteAsync($"http://127.0.0.1:{fallbackPort}/_sim/faults");
        Log(clock.Elapsed, "fallback healthy again");
        _ = stop;
    }

    private static async Task SetFaultAsync(HttpClient control, int port, string json) =>
        (await control.PostAsync($"http://127.0.0.1:{port}/_sim/faults", new StringContent(json, Encoding.UTF8, "application/json"))).EnsureSuccessStatusCode();

    private static async Task WorkerAsync(HttpClient client, int worker, TrafficStats stats, CancellationToken stop)
    {
        var random = new Random(worker);
        var n = 0;
        while (!stop.IsCancellationRequested)
        {
            n++;
            var stream = random.Next(2) == 0;
            var prompt = random.Next(10) < 3 ? $"repeated prompt {random.Next(20)}" : $"unique prompt {worker}-{n}-{Guid.NewGuid():N}";
            var body = $$"""{"model":"soak-model","stream":{{(stream ? "true" : "false")}},"messages":[{"role":"user","content":"{{prompt}}"}]}""";
            Interlocked.Increment(ref stats.Sent);
            try
            {
                using var response = await client.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));
                var text = await response.Content.ReadAsStringAsync();
                var status = (int)response.StatusCode;
                var key = status.ToString(CultureInfo.InvariantCulture);
                if (status == 200 && stream && !text.Contains("data: [DONE]", StringComparison.Ordinal))
                {
                    key = "200 stream error event";
                    Interlocked.Increment(ref stats.ServerErrors);
                }
                if (status >= 500)
                {
                    Interlocked.Increment(ref stats.ServerErrors);
                }
                stats.Count(key);
            }
            catch (Exception ex) when (ex is HttpRequestException or IOException or TaskCanceledException)
            {
                Interlocked.Increment(ref stats.TransportErrors);
                stats.Count("transport error");
            }
        }
    }

    private static async Task<long> CountRecordsAsync(HttpClient control, int gatewayPort, string from, string to)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get,
            $"http://127.0.0.1:{gatewayPort}/admin/usage?tenant=soak&from={Uri.EscapeDataString(from)}&to={Uri.EscapeDataString(to)}");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
        using var response = await control.SendAsync(request);
        if (!response.IsSuccessStatusCode)
        {
            return -1;
        }
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("totals").GetProperty("requests").GetInt64();
    }

    private static string GatewayConfig(int redisPort, int dynalitePort, int primaryPort, int fallbackPort, string dataDirectory) => JsonSerializer.Serialize(new
    {
        LlmProxy = new
        {
            Simulator = new { Enabled = false },
            AdminKeys = new { ops = ApiKeyHasher.Hash(AdminKey) },
            Tenants = new { soak = new { Keys = new { soak = ApiKeyHasher.Hash(TenantKey) } } },
            Models = new Dictionary<string, object>
            {
                ["soak-model"] = new
                {
                    Deployments = new Dictionary<string, object>
                    {
                        ["primary"] = new { Provider = "openai", BaseUrl = $"http://127.0.0.1:{primaryPort}/v1", Priority = 0, UpstreamModel = "gpt-4o-mini",
                            Breaker = new { BreakDuration = "00:00:05" }, Timeouts = new { FirstByte = "00:00:05" } },
                        ["fallback"] = new { Provider = "openai", BaseUrl = $"http://127.0.0.1:{fallbackPort}/v1", Priority = 1, UpstreamModel = "gpt-4o-mini",
                            Breaker = new { BreakDuration = "00:00:05" } },
                    },
                },
            },
            Cache = new { Enabled = true, Store = "redis", Redis = new { Configuration = $"127.0.0.1:{redisPort}" } },
            RateLimits = new
            {
                Store = "redis",
                Redis = new { Configuration = $"127.0.0.1:{redisPort}", FailureMode = "local" },
                Tenants = new { soak = new { RequestsPerMinute = 1_000_000, TokensPerMinute = 100_000_000, ConcurrentRequests = 1000 } },
            },
            Metering = new
            {
                Store = "dynamodb",
                DataDirectory = dataDirectory,
                DynamoDb = new { ServiceUrl = $"http://127.0.0.1:{dynalitePort}", CreateTable = true, Region = "us-east-1", TableName = "llmproxy-usage-soak" },
            },
        },
    });

    private sealed class TrafficStats
    {
        public long Sent;
        public long ServerErrors;
        public long TransportErrors;
        public readonly Dictionary<string, long> ByStatus = [];

        public void Count(string key)
        {
            lock (ByStatus)
            {
                ByStatus[key] = ByStatus.GetValueOrDefault(key) + 1;
            }
        }
    }

    /// <summary>Processes started by the soak, killed (with their children) when it ends, whatever happens.</summary>
    private sealed class ProcessSet : IDisposable
    {
        private readonly Dictionary<string, Process> _processes = [];

        public Process Start(string name, string file, string[] arguments, Dictionary<string, string>? environment = null, string? workingDirectory = null)
        {
            var start = new ProcessStartInfo(file, arguments) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory ?? "" };
            foreach (var (key, value) in environment ?? [])
            {
                start.Environment[key] = value;
            }
            var process = Process.Start(start)!;
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            _processes[name] = process;
            return process;
        }

        public void Kill(string name)
        {
            if (_processes.Remove(name, out var process))
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(10_000);
                process.Dispose();
            }
        }

        public void Dispose()
        {
            foreach (var name in _processes.Keys.ToList())
            {
                Kill(name);
            }
        }
    }

    private static double Slope(List<(double X, double Y)> points)
    {
        if (points.Count < 2)
        {
            return 0;
        }
        var meanX = points.Average(p => p.X);
        var meanY = points.Average(p => p.Y);
        var numerator = points.Sum(p => (p.X - meanX) * (p.Y - meanY));
        var denominator = points.Sum(p => (p.X - meanX) * (p.X - meanX));
        return denominator == 0 ? 0 : numerator / denominator;
    }

    private static double ReadRssMegabytes(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024;
            }
        }
        return double.NaN;
    }

    private static string DynaliteCli(string root)
    {
        var fromEnvironment = Environment.GetEnvironmentVariable("LLMPROXY_TEST_DYNALITE");
        foreach (var candidate in new[] { fromEnvironment, Path.Combine(root, "tests/scripts/node_modules/dynalite") })
        {
            if (candidate is not null && File.Exists(Path.Combine(candidate, "cli.js")))
            {
                return Path.Combine(candidate, "cli.js");
            }
            if (candidate is not null && candidate.EndsWith("cli.js", StringComparison.Ordinal) && File.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new InvalidOperationException("dynalite not found: run `npm ci` in tests/scripts (tests/run.sh does) or set LLMPROXY_TEST_DYNALITE");
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "LlmProxy.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("repository root not found");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task WaitForPortAsync(int port, TimeSpan? timeout = null)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < (timeout ?? TimeSpan.FromSeconds(30)))
        {
            try
            {
                using var socket = new TcpClient();
                await socket.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(100);
            }
        }
        throw new TimeoutException($"nothing listens on port {port}");
    }

    private static double ReadDouble(string[] args, string name, double fallback)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length && double.TryParse(args[index + 1], CultureInfo.InvariantCulture, out var value) ? value : fallback;
    }
}
