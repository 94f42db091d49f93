using System.Collections.Concurrent;
using System.Net;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.RateLimiting;
using LlmProxy.Simulator;
using static LlmProxy.IntegrationTests.RateLimiting.RateLimitTesting;

namespace LlmProxy.IntegrationTests.RateLimiting;

/// <summary>
/// Two gateway replicas (two hosts on their own ports, sharing nothing in memory) in front of one simulator.
/// With the Redis store they share one budget; with the local store each enforces the limit on its own, which is
/// the per-replica bug (LiteLLM #27736) the Redis store exists to avoid.
/// </summary>
public sealed class MultiReplicaTests : IAsyncLifetime
{
    private SimulatorServer _simulator = null!;

    public async ValueTask InitializeAsync() => _simulator = await SimulatorServer.StartAsync(new SimulatorOptions());

    public async ValueTask DisposeAsync() => await _simulator.DisposeAsync();

    private async Task<(GatewayHost A, GatewayHost B)> StartReplicasAsync(Func<GatewaySettings, GatewaySettings> configure)
    {
        var a = await GatewayHost.StartAsync(configure(Settings(_simulator)), services => services.AddLlmProxyRateLimiting());
        var b = await GatewayHost.StartAsync(configure(Settings(_simulator)), services => services.AddLlmProxyRateLimiting());
        return (a, b);
    }

    private static async Task<List<(HttpStatusCode Status, string Remaining, string Code)>> SendAlternatingAsync(GatewayHost a, GatewayHost b, int count)
    {
        using var httpA = a.CreateClient(AcmeKey);
        using var httpB = b.CreateClient(AcmeKey);
        var results = new ConcurrentBag<(HttpStatusCode, string, string)>();
        // Eight at a time, request i on replica i % 2: the replicas race each other for the last slots.
        await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, ct) =>
        {
            using var response = await SendAsync(i % 2 == 0 ? httpA : httpB, cancellationToken: ct);
            var code = response.StatusCode == HttpStatusCode.OK ? "" : (await response.ErrorAsync()).GetProperty("code").GetString()!;
            results.Add((response.StatusCode, response.Header("x-ratelimit-remaining-requests"), code));
        });
        return [.. results];
    }

    [Fact]
    public async Task RedisStore_TwoReplicas_200RequestsAlternating_AcceptExactly60()
    {
        var prefix = RedisTestServer.NewKeyPrefix();
        var (a, b) = await StartReplicasAsync(s => s.RedisStore(RedisTestServer.SharedConfiguration(), prefix)
            .Limit("Tenants:acme:RequestsPerMinute", 60));
        await using var _ = a;
        await using var __ = b;

        var results = await SendAlternatingAsync(a, b, 200);

        // Exact, no tolerance: every decision is one atomic script on one Redis, so the 60 slots of the window can be
        // taken only once whichever replica asks (the whole run takes a few seconds, far inside the 60 s window).
        Assert.Equal(60, results.Count(r => r.Status == HttpStatusCode.OK));
        Assert.Equal(140, results.Count(r => r.Status == HttpStatusCode.TooManyRequests && r.Code == "rate_limit_exceeded"));
        // Each admission saw a different count: remaining 59 down to 0, each exactly once across both replicas.
        Assert.Equal(Enumerable.Range(0, 60).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).Order(),
            results.Where(r => r.Status == HttpStatusCode.OK).Select(r => r.Remaining).Order());
        Assert.Equal(60, _simulator.Requests.Count);
    }

    [Fact]
    public async Task LocalStore_TwoReplicas_EachEnforcesItsOwnLimit()
    {
        var (a, b) = await StartReplicasAsync(s => s.Limit("Tenants:acme:RequestsPerMinute", 30));
        await using var _ = a;
        await using var __ = b;

        var results = await SendAlternatingAsync(a, b, 100);

        Assert.Equal(60, results.Count(r => r.Status == HttpStatusCode.OK));
    }
}
