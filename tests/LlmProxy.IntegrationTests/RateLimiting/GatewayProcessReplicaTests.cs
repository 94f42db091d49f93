using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Simulator;
using LlmProxy.Tenancy;
using static LlmProxy.IntegrationTests.RateLimiting.RateLimitTesting;

namespace LlmProxy.IntegrationTests.RateLimiting;

/// <summary>
/// Two gateway replicas as a deployment runs them: two <c>dotnet LlmProxy.dll</c> processes on their own ports, sharing
/// nothing but one real redis-server (and the upstream). Unlike <see cref="MultiReplicaTests"/>, nothing of the .NET
/// runtime (thread pool, connection multiplexer, clocks) is shared between the replicas.
/// </summary>
public sealed class GatewayProcessReplicaTests(GatewayProcessReplicaTests.Replicas replicas) : IClassFixture<GatewayProcessReplicaTests.Replicas>
{
    [Fact]
    public async Task TwoProcesses_OneRedis_200RequestsAlternating_AcceptExactly60()
    {
        using var httpA = new HttpClient { BaseAddress = replicas.A, Timeout = TimeSpan.FromSeconds(30) };
        using var httpB = new HttpClient { BaseAddress = replicas.B, Timeout = TimeSpan.FromSeconds(30) };
        httpA.DefaultRequestHeaders.Authorization = new("Bearer", AcmeKey);
        httpB.DefaultRequestHeaders.Authorization = new("Bearer", AcmeKey);
        var results = new ConcurrentBag<(int Replica, HttpStatusCode Status, string Remaining, string Error)>();
        var upstreamBefore = replicas.Simulator.Requests.Count;
        var elapsed = Stopwatch.StartNew();

        // Eight at a time, request i on replica i % 2: the two processes race each other for the last slots.
        await Parallel.ForAsync(0, 200, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = TestContext.Current.CancellationToken },
            async (i, ct) =>
            {
                using var response = await SendAsync(i % 2 == 0 ? httpA : httpB, cancellationToken: ct);
                var error = response.StatusCode == HttpStatusCode.OK ? "" : await response.Content.ReadAsStringAsync(ct);
                results.Add((i % 2, response.StatusCode, response.Header("x-ratelimit-remaining-requests"), error));
            });
        elapsed.Stop();

        // Tolerance: none. Each admission is one Lua script on the one Redis, which runs scripts one at a time, and the
        // window is measured on the Redis server's clock (Clock: server), so neither the processes' race nor their
        // clocks can let a 61st request in. The premise is that the run fits in the 60-second window (otherwise the
        // first admissions would rightly leave it and free slots) and that Redis answered every check: the failure
        // mode is 'closed', so a lost Redis round trip shows up as a 503 here instead of a silent local fallback.
        Assert.True(elapsed.Elapsed < TimeSpan.FromSeconds(50), $"the run took {elapsed.Elapsed}, too close to the 60 s window for an exact count");
        var unexpected = results.Where(r => r.Status is not (HttpStatusCode.OK or HttpStatusCode.TooManyRequests)).ToArray();
        Assert.True(unexpected.Length == 0,
            $"{unexpected.Length} unexpected responses, e.g. {unexpected.FirstOrDefault()}\n{replicas.Output}");
        Assert.Equal(60, results.Count(r => r.Status == HttpStatusCode.OK));
        Assert.Equal(140, results.Count(r => r.Status == HttpStatusCode.TooManyRequests));
        // Both processes admitted some: the shared budget was really shared, not taken by one process alone.
        Assert.Contains(results, r => r.Replica == 0 && r.Status == HttpStatusCode.OK);
        Assert.Contains(results, r => r.Replica == 1 && r.Status == HttpStatusCode.OK);
        // Each admission saw a different count, 59 down to 0, each exactly once across both processes.
        Assert.Equal(Enumerable.Range(0, 60).Select(i => i.ToString(CultureInfo.InvariantCulture)).Order(),
            results.Where(r => r.Status == HttpStatusCode.OK).Select(r => r.Remaining).Order());
        Assert.Equal(60, replicas.Simulator.Requests.Count - upstreamBefore);
    }

    /// <summary>
    /// The simulator (in the test process) and two gateway processes configured for it and for the shared redis-server
    /// (<c>LLMPROXY_TEST_REDIS</c>, under a key prefix of their own). Started once for the class: a gateway process
    /// takes a few seconds to start on a small machine.
    /// </summary>
    public sealed class Replicas : IAsyncLifetime
    {
        private readonly List<GatewayProcess> _processes = [];
        private DirectoryInfo? _directory;

        public SimulatorServer Simulator { get; private set; } = null!;

        public Uri A => _processes[0].BaseAddress;

        public Uri B => _processes[1].BaseAddress;

        public string Output => string.Join("\n", _processes.Select((p, i) => $"--- gateway {(char)('a' + i)}:\n{p.Output}"));

        public async ValueTask InitializeAsync()
        {
            var redis = RedisTestServer.SharedConfiguration();
            Simulator = await SimulatorServer.StartAsync(new SimulatorOptions());
            _directory = Directory.CreateTempSubdirectory("llmproxy-replicas-");
            var prefix = RedisTestServer.NewKeyPrefix();
            // Both start at once: their startups overlap, as a rollout's would.
            var starting = new[] { "a", "b" }.Select(name =>
            {
                var config = Path.Combine(_directory.FullName, name + ".json");
                File.WriteAllText(config, Config(redis, prefix, Path.Combine(_directory.FullName, name + "-data")));
                return StartAsync(name, config, _directory.FullName);
            }).ToArray();
            foreach (var start in starting)
            {
                try
                {
                    _processes.Add(await start);
                }
                catch
                {
                    await DisposeAsync();
                    throw;
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var process in _processes)
            {
                await process.DisposeAsync();
            }
            _processes.Clear();
            if (Simulator is not null)
            {
                await Simulator.DisposeAsync();
            }
            try
            {
                _directory?.Delete(recursive: true);
            }
            catch (IOException)
            {
                // Best effort: the temp cleaner gets what a dying process still held.
            }
        }

        /// <summary>One <c>dotnet LlmProxy.dll</c> on a port it chose itself (read back from its startup log), once it says it can serve.</summary>
        private static async Task<GatewayProcess> StartAsync(string name, string config, string workingDirectory)
        {
            var gateway = GatewayProcess.Start(workingDirectory, new Dictionary<string, string?>
            {
                ["LLMPROXY_CONFIG"] = config,
                ["Logging__LogLevel__Default"] = "Warning",
                // Only to learn the port Kestrel chose: "Now listening on: http://127.0.0.1:PORT".
                ["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Information",
                ["Logging__Console__FormatterName"] = "simple",
            });
            try
            {
                await gateway.WaitUntilListeningAsync(TimeSpan.FromSeconds(90));
                // Listening is not ready: wait until the gateway says it can serve (configuration loaded, its first
                // Redis round trip made), as a load balancer would.
                await gateway.WaitUntilAnswersAsync("readyz", TimeSpan.FromSeconds(60));
                return gateway;
            }
            catch (Exception ex)
            {
                await gateway.DisposeAsync();
                throw new InvalidOperationException($"gateway process {name} did not start", ex);
            }
        }

        private string Config(string redis, string prefix, string dataDirectory) => JsonSerializer.Serialize(new
        {
            LlmProxy = new
            {
                Simulator = new { Enabled = false },
                Tenants = new Dictionary<string, object> { ["acme"] = new { Keys = new Dictionary<string, string> { [AcmeKeyId] = ApiKeyHasher.Hash(AcmeKey) } } },
                Models = new Dictionary<string, object>
                {
                    [Model] = new { Deployments = new { sim = new { Provider = "openai", BaseUrl = new Uri(Simulator.BaseAddress, "v1").ToString() } } },
                },
                RateLimits = new
                {
                    Store = "redis",
                    // 'closed': a Redis round trip that fails shows up as a 503 in the test instead of a silent local
                    // fallback. The timeout is the default's five-fold: the suite shares a small machine with other test
                    // processes, and a round trip delayed past the timeout is the failure mode's scenario (RedisOutageTests),
                    // not this one's.
                    Redis = new { Configuration = redis, KeyPrefix = prefix, FailureMode = "closed", OperationTimeout = "00:00:05" },
                    Tenants = new { acme = new { RequestsPerMinute = 60 } },
                },
                Metering = new { DataDirectory = dataDirectory },
            },
        });
    }
}
