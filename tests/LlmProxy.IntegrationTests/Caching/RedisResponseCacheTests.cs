using System.Diagnostics;
using LlmProxy.IntegrationTests.Infrastructure;
using StackExchange.Redis;

namespace LlmProxy.IntegrationTests.Caching;

/// <summary>The response cache on a real redis-server: shared entries, tenant-separated keys, real expiry, and a Redis that dies.</summary>
public sealed class RedisResponseCacheTests
{
    /// <summary>The tests' own look at Redis: generous timeouts, since this machine can be busy, and SCAN in large pages.</summary>
    private const string Inspection = ",allowAdmin=true,connectTimeout=5000,syncTimeout=5000";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Tenant names unique to one test, so tests sharing the test Redis never see each other's keys.</summary>
    private static (string A, string B) Tenants()
    {
        var suffix = Guid.NewGuid().ToString("N")[..12];
        return ("acme-" + suffix, "globex-" + suffix);
    }

    private static Action<GatewaySettings> UseRedis(string address, string? ttl = null, string maxBackoff = "00:00:02") => s =>
    {
        s.Set("LlmProxy:Cache:Store", "redis")
            .Set("LlmProxy:Cache:Redis:Configuration", address)
            .Set("LlmProxy:Cache:Redis:OperationTimeout", "00:00:00.250")
            .Set("LlmProxy:Cache:Redis:InitialBackoff", "00:00:00.500")
            .Set("LlmProxy:Cache:Redis:MaxBackoff", maxBackoff);
        if (ttl is not null)
        {
            s.Set("LlmProxy:Cache:Ttl", ttl);
        }
    };

    private static async Task<(ConnectionMultiplexer Connection, IServer Server)> InspectAsync(string address)
    {
        var connection = await ConnectionMultiplexer.ConnectAsync(address + Inspection);
        return (connection, connection.GetServer(address));
    }

    [Fact]
    public async Task SameRequestTwoTenants_TwoUpstreamCallsAndDistinctRedisKeys()
    {
        var address = RedisTestServer.SharedAddress;
        var (a, b) = Tenants();
        await using var env = await CacheTestGateway.StartAsync(UseRedis(address), tenants: [a, b]);

        var fromA = await env.SendAsync(a, CacheTestGateway.Body());
        var fromB = await env.SendAsync(b, CacheTestGateway.Body());
        await ResponseCacheTests.WaitUntilAsync(() => KeyCount(address, "llmproxy:cache:" + a + ":*") == 1 && KeyCount(address, "llmproxy:cache:" + b + ":*") == 1);
        var againA = await env.SendAsync(a, CacheTestGateway.Body());
        var againB = await env.SendAsync(b, CacheTestGateway.Body(stream: true));

        Assert.Equal(2, env.UpstreamCalls);
        Assert.Equal("MISS", fromB.Cache);
        Assert.Equal(("HIT", fromA.Id), (againA.Cache, againA.Id));
        Assert.Equal(("HIT", fromB.Id), (againB.Cache, againB.Id));

        var (connection, server) = await InspectAsync(address);
        using (connection)
        {
            var keyA = Assert.Single(server.Keys(pattern: "llmproxy:cache:" + a + ":*", pageSize: 1000)).ToString();
            var keyB = Assert.Single(server.Keys(pattern: "llmproxy:cache:" + b + ":*", pageSize: 1000)).ToString();
            Assert.NotEqual(keyA, keyB);
            Assert.Matches($"^llmproxy:cache:{a}:gpt-test:[0-9a-f]{{64}}$", keyA);
            // Same body, same hash: only the tenant separates the entries.
            Assert.Equal(keyA.Split(':')[^1], keyB.Split(':')[^1]);
            var ttl = await connection.GetDatabase().KeyTimeToLiveAsync(keyA);
            Assert.InRange(ttl!.Value, TimeSpan.FromMinutes(59), TimeSpan.FromHours(1));
        }
    }

    [Fact]
    public async Task TwoGateways_ShareEntriesThroughRedis()
    {
        var address = RedisTestServer.SharedAddress;
        var (a, _) = Tenants();
        await using var first = await CacheTestGateway.StartAsync(UseRedis(address), tenants: [a]);
        await using var second = await CacheTestGateway.StartAsync(first.Simulator, UseRedis(address), null, null, a);

        var miss = await first.SendAsync(a, CacheTestGateway.Body("shared"));
        await ResponseCacheTests.WaitUntilAsync(() => KeyCount(address, "llmproxy:cache:" + a + ":*") == 1);
        var hit = await second.SendAsync(a, CacheTestGateway.Body("shared", stream: true));

        Assert.Equal("HIT", hit.Cache);
        Assert.Equal(miss.Id, hit.Id);
        Assert.Equal(miss.Content, hit.Content);
        Assert.Equal(1, first.UpstreamCalls);
    }

    [Fact]
    public async Task ShortTtl_EntryExpiresInRedis()
    {
        var address = RedisTestServer.SharedAddress;
        var (a, _) = Tenants();
        await using var env = await CacheTestGateway.StartAsync(UseRedis(address, ttl: "00:00:01"), tenants: [a]);

        await env.SendAsync(a, CacheTestGateway.Body());
        await ResponseCacheTests.WaitUntilAsync(() => KeyCount(address, "llmproxy:cache:" + a + ":*") == 1);
        var hit = await env.SendAsync(a, CacheTestGateway.Body());
        await ResponseCacheTests.WaitUntilAsync(() => KeyCount(address, "llmproxy:cache:" + a + ":*") == 0, seconds: 5);
        var expired = await env.SendAsync(a, CacheTestGateway.Body());

        Assert.Equal("HIT", hit.Cache);
        Assert.Equal("MISS", expired.Cache);
        Assert.Equal(2, env.UpstreamCalls);
    }

    [Fact]
    public async Task RedisPaused_RequestsSucceedWithoutATimeoutEach_ThenCachingResumes()
    {
        await using var redis = await RedisTestServer.StartOwnAsync();
        var (a, _) = Tenants();
        await using var env = await CacheTestGateway.StartAsync(UseRedis(redis.Address), tenants: [a]);
        await env.SendAsync(a, CacheTestGateway.Body("warm"));
        await ResponseCacheTests.WaitUntilAsync(() => KeyCount(redis.Address, "llmproxy:cache:*") == 1);
        Assert.Equal("HIT", (await env.SendAsync(a, CacheTestGateway.Body("warm"))).Cache);

        // A paused Redis keeps its sockets open and answers nothing: every operation would wait for the 250 ms timeout.
        await redis.PauseAsync();
        var watch = Stopwatch.StartNew();
        var replies = new List<Reply>();
        for (var i = 0; i < 50; i++)
        {
            replies.Add(await env.SendAsync(a, CacheTestGateway.Body("while paused " + i)));
        }
        watch.Stop();

        Assert.All(replies, r => Assert.Equal(200, r.Status));
        Assert.All(replies, r => Assert.Equal("MISS", r.Cache));
        // Without the backoff: 50 × (250 ms get) = 12.5 s at least (12.8 s measured). With it: one 250 ms probe every 2 s at most.
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(8), $"50 requests took {watch.Elapsed.TotalSeconds:F1} s while Redis was paused");
        using (var client = env.Gateway.CreateClient())
        {
            var ready = await client.GetAsync("readyz", Ct);
            Assert.Equal(200, (int)ready.StatusCode);
            Assert.Contains("\"response-cache\":{\"status\":\"degraded\"", await ready.Content.ReadAsStringAsync(Ct));
        }

        await redis.ResumeAsync();
        await AssertCachingResumesAsync(env, a, "after pause");
    }

    [Fact]
    public async Task RedisKilledAndRestarted_RequestsKeepSucceeding_ThenCachingResumes()
    {
        await using var redis = await RedisTestServer.StartOwnAsync();
        var (a, _) = Tenants();
        await using var env = await CacheTestGateway.StartAsync(UseRedis(redis.Address), tenants: [a]);
        await env.SendAsync(a, CacheTestGateway.Body("warm"));
        await ResponseCacheTests.WaitUntilAsync(() => KeyCount(redis.Address, "llmproxy:cache:*") == 1);

        await redis.KillAsync();
        var watch = Stopwatch.StartNew();
        var replies = new List<Reply>();
        for (var i = 0; i < 50; i++)
        {
            // Distinct prompts: an identical request arriving while the previous one's store write is still trying
            // Redis would rightly be served that answer in-process, which is not what this test is about.
            replies.Add(await env.SendAsync(a, CacheTestGateway.Body("while down " + i)));
        }
        watch.Stop();

        Assert.All(replies, r => Assert.Equal(200, r.Status));
        Assert.All(replies, r => Assert.Equal("MISS", r.Cache));
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(8), $"50 requests took {watch.Elapsed.TotalSeconds:F1} s while Redis was down");
        Assert.Contains(env.Gateway.Logs.Lines, l => l.Contains("Redis failed", StringComparison.Ordinal));

        await redis.StartAsync();
        await AssertCachingResumesAsync(env, a, "after restart");
        Assert.Contains(env.Gateway.Logs.Lines, l => l.Contains("caching resumed", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RedisUnreachableFromStart_GatewayStartsDegradedAndServes()
    {
        var (a, _) = Tenants();
        // A port nobody listens on.
        await using var redis = await RedisTestServer.StartOwnAsync();
        var address = redis.Address;
        await redis.KillAsync();
        await using var env = await CacheTestGateway.StartAsync(UseRedis(address), tenants: [a]);

        var first = await env.SendAsync(a, CacheTestGateway.Body("first"));
        var second = await env.SendAsync(a, CacheTestGateway.Body("second"));
        using var client = env.Gateway.CreateClient();
        var ready = await client.GetAsync("readyz", Ct);
        var readiness = await ready.Content.ReadAsStringAsync(Ct);

        Assert.True(first.Status == 200 && second.Status == 200, $"statuses {first.Status} {second.Status}: {first.Body} / {second.Body}");
        Assert.True(env.UpstreamCalls == 2, $"{env.UpstreamCalls} upstream calls; cache results {first.Cache} {second.Cache}");
        Assert.True((int)ready.StatusCode == 200 && readiness.Contains("\"response-cache\":{\"status\":\"degraded\"", StringComparison.Ordinal),
            $"readiness {(int)ready.StatusCode}: {readiness}");
    }

    private static async Task AssertCachingResumesAsync(CacheTestGateway env, string tenant, string content)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            var reply = await env.SendAsync(tenant, CacheTestGateway.Body(content));
            Assert.Equal(200, reply.Status);
            if (reply.Cache == "HIT")
            {
                return;
            }
            Assert.True(DateTime.UtcNow < deadline, "caching did not resume within 20 s of Redis coming back");
            await Task.Delay(200, Ct);
        }
    }

    private static int KeyCount(string address, string pattern)
    {
        using var connection = ConnectionMultiplexer.Connect(address + Inspection);
        return connection.GetServer(address).Keys(pattern: pattern, pageSize: 1000).Count();
    }
}
