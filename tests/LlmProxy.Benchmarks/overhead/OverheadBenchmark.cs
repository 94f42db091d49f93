using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using LlmProxy.Tenancy;

namespace LlmProxy.Benchmarks.Overhead;

/// <summary>
/// Gateway overhead on loopback. The same bounded load (fixed connections, fixed time) is applied in turn to the
/// simulator called directly (the floor), a bare YARP pass-through (the limit of the architecture), LlmProxy with
/// every feature on (cache miss, cache hit with the memory store and with the Redis store) and the Portkey gateway,
/// each a process of its own so that its peak RSS is its own. Targets run interleaved, round after round (A B C A B
/// C), so a noisy neighbour slows all of them rather than one. Streaming time to first chunk and chunk gaps are
/// measured by a small client; a last step holds 1,000 streams open through a fresh gateway and reads its RSS.
/// Figures only: nothing here passes or fails.
/// </summary>
internal static class OverheadBenchmark
{
    private const string TenantKey = "sk-overhead-benchmark-0123456789";
    private const string Model = "gpt-4o-mini";
    private const string StreamModel = "gpt-4o-mini-stream";
    private const string PortkeyVersion = "1.15.2";

    public static async Task<int> RunAsync(string[] args)
    {
        var settings = new Settings(args);
        using var stop = new CancellationTokenSource();
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
        var root = FindRoot();
        var work = Directory.CreateTempSubdirectory("llmproxy-overhead-");
        var processes = new ChildProcesses(work.FullName);
        try
        {
            return await RunAsync(settings, root, work.FullName, processes, stop.Token);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            Console.Error.WriteLine("interrupted; stopping every process the benchmark started");
            return 130;
        }
        finally
        {
            processes.Dispose();
            try
            {
                work.Delete(recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static async Task<int> RunAsync(Settings settings, string root, string work, ChildProcesses processes, CancellationToken cancellationToken)
    {
        var loadBefore = LoadAverage();
        Progress($"work directory {work}; load average {loadBefore}");

        // --- Targets, each its own process, loopback only.
        var simulatorPort = ChildProcesses.FreePort();
        var simulatorUrl = $"http://127.0.0.1:{simulatorPort}";
        var simulator = processes.Start("simulator", "dotnet",
            [SimulatorDll(root), "--urls", simulatorUrl, "--latency-ms", $"{settings.UpstreamLatencyMs}", "--chunk-delay-ms", $"{settings.ChunkDelayMs}"]);

        // A second simulator with no delay before its answer or first chunk: the floor of the cache-hit rows, and the
        // upstream of the streaming runs, so that time to first chunk is not quantized by the machine's timer (a
        // 1 ms delay can take several ms where the kernel's tick is coarse).
        var instantPort = ChildProcesses.FreePort();
        var instantUrl = $"http://127.0.0.1:{instantPort}";
        var instant = processes.Start("instant-simulator", "dotnet",
            [SimulatorDll(root), "--urls", instantUrl, "--latency-ms", "0", "--chunk-delay-ms", $"{settings.ChunkDelayMs}"]);

        var yarpPort = ChildProcesses.FreePort();
        var yarp = processes.Start("yarp", "dotnet", [typeof(OverheadBenchmark).Assembly.Location, "yarp", "--urls", $"http://127.0.0.1:{yarpPort}",
            "--upstream", simulatorUrl + "/", "--stream-upstream", instantUrl + "/"]);

        var redisPort = ChildProcesses.FreePort();
        var redis = processes.Start("redis", "redis-server", ["--port", $"{redisPort}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);

        var gatewayPort = ChildProcesses.FreePort();
        var gateway = StartGateway(processes, root, work, "gateway-miss", gatewayPort, simulatorUrl, instantUrl, store: "memory", redisPort, env: settings.GatewayEnvironment);
        var memoryHitPort = ChildProcesses.FreePort();
        var memoryHit = StartGateway(processes, root, work, "gateway-hit-memory", memoryHitPort, simulatorUrl, instantUrl, store: "memory", redisPort, env: settings.GatewayEnvironment);
        var redisHitPort = ChildProcesses.FreePort();
        var redisHit = StartGateway(processes, root, work, "gateway-hit-redis", redisHitPort, simulatorUrl, instantUrl, store: "redis", redisPort, env: settings.GatewayEnvironment);

        // Optional: another build of the gateway (e.g. before a change), measured in the same rounds as this one.
        Process? compareMiss = null, compareHit = null;
        var compareMissPort = ChildProcesses.FreePort();
        var compareHitPort = ChildProcesses.FreePort();
        if (settings.CompareGateway is { } compareDll)
        {
            compareMiss = StartGateway(processes, root, work, "compare-miss", compareMissPort, simulatorUrl, instantUrl, store: "memory", redisPort, compareDll);
            compareHit = StartGateway(processes, root, work, "compare-hit-memory", compareHitPort, simulatorUrl, instantUrl, store: "memory", redisPort, compareDll);
        }

        Process? portkey = null;
        var portkeyPort = ChildProcesses.FreePort();
        if (settings.Portkey)
        {
            var here = Path.Combine(root, "tests/LlmProxy.Benchmarks/overhead");
            portkey = processes.Start("portkey", "node",
                ["--require", Path.Combine(here, "portkey-loopback.cjs"), Path.Combine(here, "node_modules/@portkey-ai/gateway/build/start-server.js"), $"--port={portkeyPort}", "--headless"],
                new Dictionary<string, string> { ["NODE_ENV"] = "production" });
        }

        var ready = new List<(string Name, Process Process, int Port)>
        {
            ("simulator", simulator, simulatorPort), ("instant-simulator", instant, instantPort), ("yarp", yarp, yarpPort), ("redis", redis, redisPort),
            ("gateway-miss", gateway, gatewayPort), ("gateway-hit-memory", memoryHit, memoryHitPort), ("gateway-hit-redis", redisHit, redisHitPort),
        };
        if (portkey is not null)
        {
            ready.Add(("portkey", portkey, portkeyPort));
        }
        if (compareMiss is not null && compareHit is not null)
        {
            ready.Add(("compare-miss", compareMiss, compareMissPort));
            ready.Add(("compare-hit-memory", compareHit, compareHitPort));
        }
        foreach (var (name, process, port) in ready)
        {
            try
            {
                await ChildProcesses.WaitForPortAsync(process, port, TimeSpan.FromSeconds(90), cancellationToken);
            }
            catch (Exception ex) when (ex is TimeoutException or InvalidOperationException)
            {
                Console.Error.WriteLine($"{name} did not start: {ex.Message}\n{processes.LogOf(name)}");
                return 1;
            }
        }

        var gatewayHeaders = new[] { $"Authorization: Bearer {TenantKey}" };
        var portkeyHeaders = new[] { "x-portkey-provider: openai", $"x-portkey-custom-host: {simulatorUrl}/v1", "Authorization: Bearer sk-portkey-benchmark" };
        var portkeyStreamHeaders = new[] { "x-portkey-provider: openai", $"x-portkey-custom-host: {instantUrl}/v1", "Authorization: Bearer sk-portkey-benchmark" };
        var targets = new List<Target>
        {
            new("sim", "1 simulator, direct (floor)", $"{simulatorUrl}/v1/chat/completions", "unique", [], simulator, "simulator",
                new($"{instantUrl}/v1/chat/completions", Model, [])),
            new("instant", "1 simulator without delay (floor of hits)", $"{instantUrl}/v1/chat/completions", "same", [], instant, "instant-simulator", Upstream: instantUrl),
            new("yarp", "2 bare YARP 2.3.0 pass-through", $"http://127.0.0.1:{yarpPort}/v1/chat/completions", "unique", [], yarp, "yarp",
                new($"http://127.0.0.1:{yarpPort}/stream/v1/chat/completions", Model, [])),
            new("miss", "3 LlmProxy, all features, cache miss", $"http://127.0.0.1:{gatewayPort}/v1/chat/completions", "unique", gatewayHeaders, gateway, "gateway-miss",
                new($"http://127.0.0.1:{gatewayPort}/v1/chat/completions", StreamModel, gatewayHeaders)),
            new("hit-memory", "4 LlmProxy, cache hit, memory store", $"http://127.0.0.1:{memoryHitPort}/v1/chat/completions", "same", gatewayHeaders, memoryHit, "gateway-hit-memory"),
            new("hit-redis", "4 LlmProxy, cache hit, Redis store", $"http://127.0.0.1:{redisHitPort}/v1/chat/completions", "same", gatewayHeaders, redisHit, "gateway-hit-redis"),
        };
        if (compareMiss is not null && compareHit is not null)
        {
            targets.Add(new("compare-miss", "3' comparison build, all features, cache miss", $"http://127.0.0.1:{compareMissPort}/v1/chat/completions", "unique", gatewayHeaders, compareMiss, "compare-miss"));
            targets.Add(new("compare-hit-memory", "4' comparison build, cache hit, memory store", $"http://127.0.0.1:{compareHitPort}/v1/chat/completions", "same", gatewayHeaders, compareHit, "compare-hit-memory"));
        }
        if (portkey is not null)
        {
            targets.Add(new("portkey", $"6 Portkey {PortkeyVersion} (node)", $"http://127.0.0.1:{portkeyPort}/v1/chat/completions", "unique", portkeyHeaders, portkey, "portkey",
                new($"http://127.0.0.1:{portkeyPort}/v1/chat/completions", Model, portkeyStreamHeaders)));
        }

        // --- Check that every target answers, really through the simulator, and that the hit targets hit.
        var checks = await VerifyAsync(targets, simulatorUrl, cancellationToken);
        foreach (var line in checks.Lines)
        {
            Progress(line);
        }
        if (!checks.Ok)
        {
            foreach (var target in targets)
            {
                Console.Error.WriteLine($"--- {target.Key} log\n{processes.LogOf(target.LogName)}");
            }
            return 1;
        }

        // --- Warm-up, not measured: connection pools, and above all the JIT. A gateway runs much more code per request
        // than the simulator or YARP, and tiered compilation takes seconds under load to reach its final code.
        var wrk = new WrkRunner(Path.Combine(root, "tests/LlmProxy.Benchmarks/overhead/chat.lua"), settings.Threads);
        using var streamClient = StreamingProbe.CreateClient(settings.StreamConnections);
        foreach (var target in targets)
        {
            Progress($"warm-up {target.Label}");
            await wrk.RunAsync(target.Url, settings.Connections, settings.Warmup, Model, target.Mode, target.Headers, cancellationToken);
            if (target.Stream is { } stream)
            {
                await StreamingProbe.MeasureAsync(streamClient, stream.Url, stream.Model, stream.Headers, settings.StreamConnections, TimeSpan.FromSeconds(1), cancellationToken);
            }
        }

        // --- Interleaved rounds.
        var results = targets.ToDictionary(t => t.Key, _ => new TargetResults());
        for (var round = 1; round <= settings.Rounds; round++)
        {
            foreach (var target in targets)
            {
                Progress($"round {round}/{settings.Rounds}: {target.Label}");
                var latency = await wrk.RunAsync(target.Url, settings.LatencyConnections, settings.Duration, Model, target.Mode, target.Headers, cancellationToken);
                var load = await wrk.RunAsync(target.Url, settings.Connections, settings.Duration, Model, target.Mode, target.Headers, cancellationToken);
                results[target.Key].Add(latency, load);
            }
            foreach (var target in targets.Where(t => t.Stream is not null))
            {
                Progress($"round {round}/{settings.Rounds}: {target.Label}, streaming");
                var stream = target.Stream!;
                results[target.Key].Add(await StreamingProbe.MeasureAsync(streamClient, stream.Url, stream.Model, stream.Headers, settings.StreamConnections,
                    settings.Duration, cancellationToken));
            }
        }
        foreach (var target in targets)
        {
            results[target.Key].PeakRssMb = ChildProcesses.MemoryMegabytes(target.Process, "VmHWM");
        }
        var redisPeak = ChildProcesses.MemoryMegabytes(redis, "VmHWM");
        foreach (var target in targets)
        {
            processes.Stop(target.Process);
        }
        processes.Stop(redis);

        // --- 1,000 streams held open through a fresh gateway in front of a slow simulator.
        var (hold, yarpHold) = await HoldStreamsAsync(settings, root, work, processes, cancellationToken);
        var loadAfter = LoadAverage();

        var report = Report(settings, targets, results, checks, redisPeak, hold, yarpHold, loadBefore, loadAfter);
        Console.WriteLine();
        Console.Write(report);
        if (settings.Save)
        {
            var save = Path.Combine(root, "tests/LlmProxy.Benchmarks/results", $"overhead-{DateTime.UtcNow:yyyy-MM-dd}.md");
            var command = "bash tests/LlmProxy.Benchmarks/overhead/run.sh " + string.Join(' ', settings.Arguments.Where(a => a != "--save"));
            await File.WriteAllTextAsync(save, $"# Overhead benchmark, {DateTime.UtcNow:yyyy-MM-dd}\n\nCommand: `{command.Trim()}`\n\n{report}", CancellationToken.None);
            Progress($"saved {save}");
        }
        return 0;
    }

    private sealed record Target(string Key, string Label, string Url, string Mode, string[] Headers, Process Process, string LogName, StreamTarget? Stream = null,
        string? Upstream = null)
    {
        public bool ExpectsHits => Key.Contains("hit", StringComparison.Ordinal);
    }

    /// <summary>Where and how a target is sent streamed requests (through to the no-delay simulator).</summary>
    private sealed record StreamTarget(string Url, string Model, string[] Headers);

    private sealed class TargetResults
    {
        public LatencyHistogram Latency { get; } = new();
        public LatencyHistogram LatencyUnderLoad { get; } = new();
        public List<double> RequestsPerSecondByRound { get; } = [];
        public long Requests;
        public double Seconds;
        public long Errors;
        public StreamResult Streaming { get; } = new();
        public double PeakRssMb = double.NaN;

        public double RequestsPerSecond => Requests / Seconds;

        public void Add(WrkResult latency, WrkResult load)
        {
            Merge(Latency, latency.Latency);
            Merge(LatencyUnderLoad, load.Latency);
            RequestsPerSecondByRound.Add(load.RequestsPerSecond);
            Requests += load.Requests;
            Seconds += load.Duration.TotalSeconds;
            Errors += latency.Errors + load.Errors;
        }

        public void Add(StreamResult streaming)
        {
            Merge(Streaming.TimeToFirstChunk, streaming.TimeToFirstChunk);
            Merge(Streaming.ChunkGaps, streaming.ChunkGaps);
            Streaming.Streams += streaming.Streams;
            Streaming.Errors += streaming.Errors;
            Streaming.Duration += streaming.Duration;
        }

        private static void Merge(LatencyHistogram into, LatencyHistogram from) => from.CopyTo(into);
    }

    private sealed record Checks(bool Ok, List<string> Lines);

    /// <summary>
    /// One request through every target: it must answer 200 with the simulator's reply, and the simulator must have
    /// received it (so a gateway cannot answer from anywhere else); the hit targets' second identical request must
    /// say HIT and must not reach the simulator.
    /// </summary>
    private static async Task<Checks> VerifyAsync(List<Target> targets, string simulatorUrl, CancellationToken cancellationToken)
    {
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var lines = new List<string>();
        var ok = true;
        foreach (var target in targets)
        {
            var upstream = target.Upstream ?? simulatorUrl;
            var before = await SimulatorCountAsync(client, upstream, cancellationToken);
            // The exact body chat.lua sends in "same" mode, so that the hit targets' entry is the one wrk will hit.
            var body = $$"""{"model":"{{Model}}","messages":[{"role":"user","content":"overhead benchmark prompt"}],"max_tokens":64}""";
            var (status, text, cache) = await SendAsync(client, target, body, cancellationToken);
            var after = await SimulatorCountAsync(client, upstream, cancellationToken);
            var reached = after - before;
            var good = status == 200 && text.Contains("Simulated reply to: overhead benchmark prompt", StringComparison.Ordinal) && reached == 1;
            var line = $"check {target.Label}: HTTP {status}, simulator received {reached} request(s)";
            if (target.ExpectsHits)
            {
                var (status2, _, cache2) = await SendAsync(client, target, body, cancellationToken);
                var reached2 = await SimulatorCountAsync(client, upstream, cancellationToken) - after;
                good &= status2 == 200 && cache2 == "HIT" && reached2 == 0;
                line += $"; first x-llmproxy-cache {cache}, repeated: {cache2}, simulator received {reached2}";
            }
            ok &= good;
            lines.Add(line + (good ? "" : "  <-- FAILED"));
        }
        return new Checks(ok, lines);
    }

    private static async Task<(int Status, string Body, string? Cache)> SendAsync(HttpClient client, Target target, string body, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, target.Url) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        foreach (var header in target.Headers)
        {
            var colon = header.IndexOf(':', StringComparison.Ordinal);
            request.Headers.TryAddWithoutValidation(header[..colon].Trim(), header[(colon + 1)..].Trim());
        }
        using var response = await client.SendAsync(request, cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        var cache = response.Headers.TryGetValues("x-llmproxy-cache", out var values) ? values.FirstOrDefault() : null;
        return ((int)response.StatusCode, text, cache);
    }

    private static async Task<long> SimulatorCountAsync(HttpClient client, string simulatorUrl, CancellationToken cancellationToken)
    {
        using var json = JsonDocument.Parse(await client.GetStringAsync($"{simulatorUrl}/_sim/requests", cancellationToken));
        return json.RootElement.GetProperty("count").GetInt64();
    }

    private sealed record HoldResult(int Requested, int Opened, double IdleRssMb, double OpenRssMb, double PeakRssMb, string? Problem)
    {
        public static HoldResult Skipped(int requested, string why) => new(requested, 0, double.NaN, double.NaN, double.NaN, why);
    }

    /// <summary>
    /// Holds <see cref="Settings.HoldStreams"/> streams open through a fresh LlmProxy (every feature on), then through a
    /// fresh bare YARP, both in front of a simulator that sends one chunk a second, and reads each one's RSS while all
    /// its streams are open. YARP's figure is what the architecture (Kestrel, YARP, SocketsHttpHandler) costs by itself.
    /// </summary>
    private static async Task<(HoldResult Gateway, HoldResult Yarp)> HoldStreamsAsync(Settings settings, string root, string work, ChildProcesses processes,
        CancellationToken cancellationToken)
    {
        if (settings.HoldStreams <= 0)
        {
            return (HoldResult.Skipped(0, "skipped"), HoldResult.Skipped(0, "skipped"));
        }
        var slowPort = ChildProcesses.FreePort();
        var slowUrl = $"http://127.0.0.1:{slowPort}";
        // One event a second: a stream of the hold prompt lasts about a minute, far longer than the measurement.
        var slow = processes.Start("slow-simulator", "dotnet", [SimulatorDll(root), "--urls", slowUrl, "--chunk-delay-ms", "1000"]);
        try
        {
            await ChildProcesses.WaitForPortAsync(slow, slowPort, TimeSpan.FromSeconds(90), cancellationToken);
            Progress($"holding {settings.HoldStreams} streams open through a fresh gateway");
            var gatewayPort = ChildProcesses.FreePort();
            var gateway = StartGateway(processes, root, work, "gateway-hold", gatewayPort, slowUrl, slowUrl, store: "memory", redisPort: 0, env: settings.GatewayEnvironment);
            var gatewayResult = await HoldThroughAsync(settings, processes, gateway, gatewayPort, [$"Authorization: Bearer {TenantKey}"], cancellationToken);
            Progress($"holding {settings.HoldStreams} streams open through a fresh bare YARP");
            var yarpPort = ChildProcesses.FreePort();
            var yarp = processes.Start("yarp-hold", "dotnet", [typeof(OverheadBenchmark).Assembly.Location, "yarp", "--urls", $"http://127.0.0.1:{yarpPort}", "--upstream", slowUrl + "/"]);
            var yarpResult = await HoldThroughAsync(settings, processes, yarp, yarpPort, [], cancellationToken);
            return (gatewayResult, yarpResult);
        }
        catch (Exception ex) when (ex is TimeoutException or InvalidOperationException)
        {
            return (HoldResult.Skipped(settings.HoldStreams, $"did not start: {ex.Message}"), HoldResult.Skipped(settings.HoldStreams, "not run"));
        }
        finally
        {
            processes.Stop(slow);
        }
    }

    private static async Task<HoldResult> HoldThroughAsync(Settings settings, ChildProcesses processes, Process target, int port, string[] headers,
        CancellationToken cancellationToken)
    {
        try
        {
            await ChildProcesses.WaitForPortAsync(target, port, TimeSpan.FromSeconds(90), cancellationToken);
            var url = $"http://127.0.0.1:{port}/v1/chat/completions";
            using (var client = new HttpClient())
            {
                // A few requests first, so the idle figure is of a process that has served (JIT done, pools created).
                for (var i = 0; i < 20; i++)
                {
                    using var request = StreamingProbe.Request(url, Encoding.UTF8.GetBytes($$"""{"model":"{{Model}}","messages":[{"role":"user","content":"warm {{i}}"}]}"""), headers);
                    using var response = await client.SendAsync(request, cancellationToken);
                }
            }
            await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
            var idle = ChildProcesses.MemoryMegabytes(target, "VmRSS");

            using var release = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var (opened, finished) = await StreamingProbe.HoldAsync(url, Model, headers, settings.HoldStreams, TimeSpan.FromSeconds(60), release.Token);
            var open = 0.0;
            for (var i = 0; i < 15; i++)
            {
                open = Math.Max(open, ChildProcesses.MemoryMegabytes(target, "VmRSS"));
                await Task.Delay(200, cancellationToken);
            }
            var peak = ChildProcesses.MemoryMegabytes(target, "VmHWM");
            await release.CancelAsync();
            await Task.WhenAny(finished, Task.Delay(TimeSpan.FromSeconds(20), CancellationToken.None));
            return new HoldResult(settings.HoldStreams, opened, idle, open, peak,
                opened < settings.HoldStreams ? $"only {opened} streams got their first event within 60 s" : null);
        }
        finally
        {
            processes.Stop(target);
        }
    }

    private static Process StartGateway(ChildProcesses processes, string root, string work, string name, int port, string upstream, string streamUpstream,
        string store, int redisPort, string? gatewayDll = null, IReadOnlyDictionary<string, string>? env = null)
    {
        var directory = Directory.CreateDirectory(Path.Combine(work, name)).FullName;
        var config = Path.Combine(directory, "llmproxy.json");
        File.WriteAllText(config, GatewayConfig(root, upstream, streamUpstream, store, redisPort, Path.Combine(directory, "data")));
        return processes.Start(name, "dotnet", [gatewayDll ?? Path.Combine(root, "src/LlmProxy/bin/Release/net10.0/LlmProxy.dll"), "--urls", $"http://127.0.0.1:{port}"],
            new Dictionary<string, string>(env ?? new Dictionary<string, string>())
            {
                ["LLMPROXY_CONFIG"] = config,
                // The per-request Information line is a console write; every .NET target logs warnings only.
                ["Logging__LogLevel__Default"] = "Warning",
            },
            workingDirectory: directory);
    }

    /// <summary>
    /// Every feature on: tenant key authentication; rate limits on requests, tokens, concurrency and a daily budget
    /// (high enough never to reject); two deployments behind breakers (the fallback never needed); the response cache;
    /// usage metering to SQLite with costs from the price table; Prometheus metrics.
    /// </summary>
    private static string GatewayConfig(string root, string upstream, string streamUpstream, string store, int redisPort, string dataDirectory) => JsonSerializer.Serialize(new
    {
        LlmProxy = new
        {
            Simulator = new { Enabled = false },
            Tenants = new { bench = new { Keys = new { bench = ApiKeyHasher.Hash(TenantKey) } } },
            Models = new Dictionary<string, object>
            {
                [Model] = new
                {
                    Deployments = new Dictionary<string, object>
                    {
                        ["primary"] = new { Provider = "openai", BaseUrl = $"{upstream}/v1", Priority = 0 },
                        ["fallback"] = new { Provider = "openai", BaseUrl = $"{upstream}/v1", Priority = 1 },
                    },
                },
                // The same, in front of the no-delay simulator, for the streaming runs.
                [StreamModel] = new
                {
                    Deployments = new Dictionary<string, object>
                    {
                        ["stream-primary"] = new { Provider = "openai", BaseUrl = $"{streamUpstream}/v1", Priority = 0, UpstreamModel = Model },
                        ["stream-fallback"] = new { Provider = "openai", BaseUrl = $"{streamUpstream}/v1", Priority = 1, UpstreamModel = Model },
                    },
                },
            },
            // Unique prompts on the miss path fill the memory store; the bound keeps its share of RSS known.
            Cache = new { Enabled = true, Store = store, Memory = new { MaxBytes = 32 * 1024 * 1024 }, Redis = new { Configuration = $"127.0.0.1:{redisPort}" } },
            RateLimits = new
            {
                Store = "local",
                Tenants = new { bench = new { RequestsPerMinute = 10_000_000, TokensPerMinute = 2_000_000_000, ConcurrentRequests = 100_000, DailyBudgetUsd = 1_000_000 } },
            },
            Metering = new { Store = "sqlite", DataDirectory = dataDirectory, PricingFile = Path.Combine(root, "config/pricing.json") },
            Metrics = new { Enabled = true },
        },
    });

    private static string Report(Settings settings, List<Target> targets, Dictionary<string, TargetResults> results, Checks checks, double redisPeak,
        HoldResult hold, HoldResult yarpHold, string loadBefore, string loadAfter)
    {
        var s = new StringBuilder();
        var sim = results["sim"];
        var yarp = results["yarp"];
        results.TryGetValue("portkey", out var portkey);
        var miss = results["miss"];
        var hit = results["hit-memory"];

        s.AppendLine("## Machine");
        s.AppendLine();
        foreach (var line in MachineDescription(loadBefore, loadAfter))
        {
            s.AppendLine("- " + line);
        }
        s.AppendLine();
        s.AppendLine("## Load");
        s.AppendLine();
        s.AppendLine(Invariant($"- wrk, {settings.Threads} thread(s), closed loop, on loopback: latency at {settings.LatencyConnections} connection(s), throughput at {settings.Connections} connections, {settings.Duration.TotalSeconds:F0} s each, per target per round; {settings.Rounds} interleaved rounds (every target once per round, in table order)."));
        s.AppendLine(Invariant($"- Upstream: the LlmProxy simulator, {settings.UpstreamLatencyMs} ms before the answer (before the first chunk of a stream), {settings.ChunkDelayMs} ms between streamed chunks; non-streamed bodies ~0.2 KB in, ~0.6 KB out."));
        s.AppendLine("- Prompts are unique per request (cache misses) except on the cache-hit rows, which repeat one prompt.");
        s.AppendLine(Invariant($"- Warm-up before the rounds, not measured: {settings.Warmup.TotalSeconds:F0} s per target at {settings.Connections} connections."));
        if (settings.GatewayEnvironment.Count > 0)
        {
            s.AppendLine($"- This build's LlmProxy processes ran with {string.Join(", ", settings.GatewayEnvironment.Select(e => $"{e.Key}={e.Value}"))}.");
        }
        if (settings.CompareGateway is { } compare)
        {
            s.AppendLine($"- Rows marked ' run a comparison build of the gateway ({settings.CompareLabel ?? Path.GetFileName(compare)}) with the same configuration, in the same rounds.");
        }
        s.AppendLine(Invariant($"- Streaming: {settings.StreamConnections} connections of back-to-back streamed requests, {settings.Duration.TotalSeconds:F0} s per target per round, all to a second simulator with no delay before the first chunk and {settings.ChunkDelayMs} ms between chunks (so time to first chunk is not quantized by the timer)."));
        s.AppendLine(Invariant($"- The upstream's {settings.UpstreamLatencyMs} ms delay is {sim.Latency.PercentileMs(50) - results["instant"].Latency.PercentileMs(50):F2} ms in effect (simulator p50 with the delay minus without; .NET timers fire late); it is the same for every row that goes upstream."));
        s.AppendLine("- Each target is a separate process; peak RSS is its VmHWM over the whole run (the simulator's covers the traffic of every target).");
        s.AppendLine();
        foreach (var line in checks.Lines)
        {
            s.AppendLine("- " + line);
        }
        s.AppendLine();

        s.AppendLine("## Non-streamed");
        s.AppendLine();
        s.AppendLine(Invariant($"| target | req/s @{settings.Connections} | per round | p50 ms @{settings.LatencyConnections} | p99 ms @{settings.LatencyConnections} | added p50 | added p99 | p99 ms @{settings.Connections} | x YARP | x Portkey | peak RSS MB | errors |"));
        s.AppendLine("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var target in targets)
        {
            var r = results[target.Key];
            s.AppendLine(Invariant($"| {target.Label} | {r.RequestsPerSecond:F0} | {string.Join(", ", r.RequestsPerSecondByRound.Select(v => v.ToString("F0", CultureInfo.InvariantCulture)))} | {r.Latency.PercentileMs(50):F3} | {r.Latency.PercentileMs(99):F3} | {Added(r.Latency, sim.Latency, 50)} | {Added(r.Latency, sim.Latency, 99)} | {r.LatencyUnderLoad.PercentileMs(99):F2} | {Ratio(r, yarp)} | {Ratio(r, portkey)} | {r.PeakRssMb:F0} | {r.Errors} |"));
        }
        s.AppendLine(Invariant($"| redis-server (store of the Redis row) | | | | | | | | | | {redisPeak:F0} | |"));
        s.AppendLine();

        s.AppendLine("## Streaming");
        s.AppendLine();
        s.AppendLine("| target | streams/s | TTFC p50 ms | TTFC p99 ms | added p50 | added p99 | gap p50 ms | gap p99 ms | added gap p50 | added gap p99 | errors |");
        s.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var target in targets.Where(t => t.Stream is not null))
        {
            var r = results[target.Key].Streaming;
            s.AppendLine(Invariant($"| {target.Label} | {r.Streams / r.Duration.TotalSeconds:F0} | {r.TimeToFirstChunk.PercentileMs(50):F3} | {r.TimeToFirstChunk.PercentileMs(99):F3} | {Added(r.TimeToFirstChunk, sim.Streaming.TimeToFirstChunk, 50)} | {Added(r.TimeToFirstChunk, sim.Streaming.TimeToFirstChunk, 99)} | {r.ChunkGaps.PercentileMs(50):F3} | {r.ChunkGaps.PercentileMs(99):F3} | {Added(r.ChunkGaps, sim.Streaming.ChunkGaps, 50)} | {Added(r.ChunkGaps, sim.Streaming.ChunkGaps, 99)} | {r.Errors} |"));
        }
        s.AppendLine();
        s.AppendLine("TTFC: time from sending the request to the first complete server-sent event. Gap: time between successive events of one response.");
        s.AppendLine();

        s.AppendLine(Invariant($"## {hold.Requested:N0} concurrent streams (fresh processes, upstream sending one chunk a second)"));
        s.AppendLine();
        if (hold.Problem == "skipped")
        {
            s.AppendLine("- skipped");
        }
        else
        {
            s.AppendLine("| process | streams open | RSS idle MB | RSS, streams open MB | per stream KB | peak RSS MB |");
            s.AppendLine("|---|---:|---:|---:|---:|---:|");
            foreach (var (label, r) in new[] { ("LlmProxy, all features", hold), ("bare YARP 2.3.0", yarpHold) })
            {
                s.AppendLine(Invariant($"| {label} | {r.Opened:N0} of {r.Requested:N0}{(r.Problem is null ? "" : $" ({r.Problem})")} | {r.IdleRssMb:F0} | {r.OpenRssMb:F0} | {(r.OpenRssMb - r.IdleRssMb) * 1024 / Math.Max(1, r.Opened):F0} | {r.PeakRssMb:F0} |"));
            }
            s.AppendLine();
            s.AppendLine("RSS with the streams open is the largest of 15 samples over 3 s, once every stream has received its first chunk.");
        }
        s.AppendLine();

        s.AppendLine("## Performance targets");
        s.AppendLine();
        s.AppendLine("| target | measured | met |");
        s.AppendLine("|---|---:|---|");
        var missOverYarp = miss.RequestsPerSecond / yarp.RequestsPerSecond;
        s.AppendLine(Invariant($"| all-features throughput >= 0.8x bare YARP | {missOverYarp:F2}x | {Met(missOverYarp >= 0.8)} |"));
        if (portkey is not null)
        {
            var missOverPortkey = miss.RequestsPerSecond / portkey.RequestsPerSecond;
            s.AppendLine(Invariant($"| all-features throughput >= 5x Portkey | {missOverPortkey:F2}x | {Met(missOverPortkey >= 5)} |"));
        }
        var addedP99 = miss.Latency.PercentileMs(99) - sim.Latency.PercentileMs(99);
        s.AppendLine(Invariant($"| p99 added <= 1 ms (all features, miss, @{settings.LatencyConnections}) | {addedP99:F3} ms | {Met(addedP99 <= 1)} |"));
        var hitP99 = hit.Latency.PercentileMs(99);
        s.AppendLine(Invariant($"| cache-hit p99 <= 0.5 ms (memory store, client-observed @{settings.LatencyConnections}; simulator without delay: {results["instant"].Latency.PercentileMs(99):F3}) | {hitP99:F3} ms | {Met(hitP99 <= 0.5)} |"));
        var ttftP50 = miss.Streaming.TimeToFirstChunk.PercentileMs(50) - sim.Streaming.TimeToFirstChunk.PercentileMs(50);
        var ttftP99 = miss.Streaming.TimeToFirstChunk.PercentileMs(99) - sim.Streaming.TimeToFirstChunk.PercentileMs(99);
        s.AppendLine(Invariant($"| TTFT added <= 0.2 ms (p50 / p99) | {ttftP50:F3} / {ttftP99:F3} ms | {Met(ttftP50 <= 0.2)} / {Met(ttftP99 <= 0.2)} |"));
        if (hold.Problem != "skipped")
        {
            s.AppendLine(Invariant($"| RSS <= 150 MB with {hold.Requested:N0} concurrent streams | {hold.OpenRssMb:F0} MB ({hold.Opened:N0} open) | {Met(hold.OpenRssMb <= 150 && hold.Opened == hold.Requested)} |"));
        }
        if (results.TryGetValue("compare-miss", out var compareMiss) && results.TryGetValue("compare-hit-memory", out var compareHit))
        {
            s.AppendLine();
            s.AppendLine(Invariant($"This build against the comparison build, same rounds: cache-miss throughput {miss.RequestsPerSecond / compareMiss.RequestsPerSecond:F2}x, p99 @{settings.LatencyConnections} {miss.Latency.PercentileMs(99):F3} vs {compareMiss.Latency.PercentileMs(99):F3} ms; cache-hit throughput {hit.RequestsPerSecond / compareHit.RequestsPerSecond:F2}x, p99 {hitP99:F3} vs {compareHit.Latency.PercentileMs(99):F3} ms; peak RSS miss {miss.PeakRssMb:F0} vs {compareMiss.PeakRssMb:F0} MB."));
        }
        return s.ToString();
    }

    private static string Met(bool met) => met ? "yes" : "no";

    private static string Added(LatencyHistogram value, LatencyHistogram floor, double percent) =>
        (value.PercentileMs(percent) - floor.PercentileMs(percent)).ToString("+0.000;-0.000;0.000", CultureInfo.InvariantCulture);

    private static string Ratio(TargetResults value, TargetResults? baseline) =>
        baseline is null ? "-" : (value.RequestsPerSecond / baseline.RequestsPerSecond).ToString("F2", CultureInfo.InvariantCulture);

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    private static IEnumerable<string> MachineDescription(string loadBefore, string loadAfter)
    {
        var cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown";
        var memory = File.ReadLines("/proc/meminfo").First(l => l.StartsWith("MemTotal:", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
        var os = File.Exists("/etc/os-release")
            ? File.ReadLines("/etc/os-release").FirstOrDefault(l => l.StartsWith("PRETTY_NAME=", StringComparison.Ordinal))?[12..].Trim('"') ?? "Linux"
            : RuntimeInformation.OSDescription;
        yield return $"CPU: {Environment.ProcessorCount} logical cores, {cpu}";
        yield return Invariant($"Memory: {long.Parse(memory, CultureInfo.InvariantCulture) / 1024.0 / 1024:F1} GiB");
        yield return $"OS: {os}, kernel {File.ReadAllText("/proc/sys/kernel/osrelease").Trim()}";
        yield return $"Runtime: {RuntimeInformation.FrameworkDescription} (server GC for the simulator, YARP and LlmProxy); node {Tool("node", "--version")}; {Tool("wrk", "-v").Split(" Copyright")[0]}; {Tool("redis-server", "--version").Split(" sha=")[0]}";
        yield return $"Load average (1, 5, 15 min) before: {loadBefore}; after: {loadAfter}";
    }

    private static string Tool(string file, string argument)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo(file, [argument]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            var output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
            process.WaitForExit();
            return output.Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault()?.Trim() ?? "";
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return $"{file} missing";
        }
    }

    private static string LoadAverage() => string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));

    private static void Progress(string line) => Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] {line}");

    private static string SimulatorDll(string root) => Path.Combine(root, "src/LlmProxy.Simulator/bin/Release/net10.0/LlmProxy.Simulator.dll");

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

    private sealed class Settings(string[] args)
    {
        public string[] Arguments { get; } = args;
        public TimeSpan Duration { get; } = Options.ReadDuration(args, "--duration", TimeSpan.FromSeconds(6));
        public int Connections { get; } = Options.ReadInt(args, "--connections", 32);
        public int Rounds { get; } = Options.ReadInt(args, "--rounds", 2);
        public int LatencyConnections { get; } = Options.ReadInt(args, "--latency-connections", 1);
        public int StreamConnections { get; } = Options.ReadInt(args, "--stream-connections", 8);
        public int HoldStreams { get; } = Options.ReadInt(args, "--hold-streams", 1000);
        public int UpstreamLatencyMs { get; } = Options.ReadInt(args, "--upstream-latency-ms", 1);
        public int ChunkDelayMs { get; } = Options.ReadInt(args, "--chunk-delay-ms", 1);
        public int Threads { get; } = Options.ReadInt(args, "--threads", 1);
        public TimeSpan Warmup { get; } = Options.ReadDuration(args, "--warmup", TimeSpan.FromSeconds(5));
        public string? CompareGateway { get; } = Options.Read(args, "--compare-gateway") is { } path ? Path.GetFullPath(path) : null;
        public string? CompareLabel { get; } = Options.Read(args, "--compare-label");

        /// <summary>Environment for this build's gateway processes, from repeated <c>--gateway-env NAME=VALUE</c> (e.g. GC settings).</summary>
        public IReadOnlyDictionary<string, string> GatewayEnvironment { get; } = args
            .Select((a, i) => a == "--gateway-env" && i + 1 < args.Length ? args[i + 1] : null)
            .OfType<string>()
            .Where(v => v.Contains('=', StringComparison.Ordinal))
            .ToDictionary(v => v[..v.IndexOf('=', StringComparison.Ordinal)], v => v[(v.IndexOf('=', StringComparison.Ordinal) + 1)..]);
        public bool Portkey { get; } = !Options.Has(args, "--no-portkey");
        public bool Save { get; } = Options.Has(args, "--save");
    }
}
