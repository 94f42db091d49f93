using System.Net;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.IntegrationTests.OpenAiApi;
using LlmProxy.RateLimiting;
using LlmProxy.Simulator;
using static LlmProxy.IntegrationTests.RateLimiting.RateLimitTesting;

namespace LlmProxy.IntegrationTests.RateLimiting;

/// <summary>Redis dies (a redis-server of the test's own, killed mid-test): the configured failure mode, never a 500.</summary>
public sealed class RedisOutageTests : IAsyncLifetime
{
    private SimulatorServer _simulator = null!;
    private RedisTestServer _redis = null!;

    public async ValueTask InitializeAsync()
    {
        _simulator = await SimulatorServer.StartAsync(new SimulatorOptions());
        _redis = await RedisTestServer.StartAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await _redis.DisposeAsync();
        await _simulator.DisposeAsync();
    }

    private Task<GatewayHost> StartAsync(string failureMode, string? configuration = null, TimeProvider? time = null) =>
        GatewayHost.StartAsync(Settings(_simulator)
            .RedisStore(configuration ?? _redis.Configuration, RedisTestServer.NewKeyPrefix())
            .Limit("Redis:FailureMode", failureMode)
            .Limit("Redis:ReplicaCount", 2)
            .Limit("Tenants:acme:RequestsPerMinute", 10), services =>
            {
                if (time is not null)
                {
                    services.AddSingleton(time);
                }
                services.AddLlmProxyRateLimiting();
            });

    private static int WarningsAboutTheStore(GatewayHost gateway) =>
        gateway.Logs.Lines.Count(l => l.StartsWith("Warning ", StringComparison.Ordinal) && l.Contains("Rate limit store unavailable", StringComparison.Ordinal));

    [Fact]
    public async Task RedisKilled_LocalMode_FallsBackToThisReplicasShare_AndBacksOff()
    {
        await using var gateway = await StartAsync(RateLimitFailureModes.Local);
        using var http = gateway.CreateClient(AcmeKey);
        for (var i = 0; i < 3; i++)
        {
            using var shared = await SendAsync(http);
            Assert.Equal(HttpStatusCode.OK, shared.StatusCode);
            Assert.Equal("10", shared.Header("x-ratelimit-limit-requests"));
        }

        _redis.Kill();
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 8; i++)
        {
            using var response = await SendAsync(http);
            statuses.Add(response.StatusCode);
            Assert.Equal("5", response.Header("x-ratelimit-limit-requests")); // 10 / ReplicaCount 2
        }

        // The fallback counts from zero: this replica's share of 5, then 429s.
        Assert.Equal([.. Enumerable.Repeat(HttpStatusCode.OK, 5), .. Enumerable.Repeat(HttpStatusCode.TooManyRequests, 3)], statuses);
        // Redis was tried once, not on every request: one failure, one warning, then the retry interval.
        Assert.Equal(1, WarningsAboutTheStore(gateway));
    }

    [Fact]
    public async Task RedisKilled_ClosedMode_Refuses503WithRetryAfter()
    {
        await using var gateway = await StartAsync(RateLimitFailureModes.Closed);
        using var http = gateway.CreateClient(AcmeKey);
        using (var shared = await SendAsync(http))
        {
            Assert.Equal(HttpStatusCode.OK, shared.StatusCode);
        }

        _redis.Kill();
        for (var i = 0; i < 5; i++)
        {
            using var response = await SendAsync(http);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            Assert.InRange(int.Parse(response.Header("Retry-After"), System.Globalization.CultureInfo.InvariantCulture), 1, 5);
            var error = await response.ErrorAsync();
            Assert.Equal("rate_limiter_unavailable", error.GetProperty("code").GetString());
            Assert.Equal("server_error", error.GetProperty("type").GetString());
            Assert.Empty(response.Header("x-ratelimit-remaining-requests")); // nothing true to report
        }
        Assert.Equal(1, _simulator.Requests.Count);
        Assert.Equal(1, WarningsAboutTheStore(gateway));
    }

    [Fact]
    public async Task RedisUnreachableAtStartup_GatewayStartsAndServesFromTheFallback()
    {
        await using var gateway = await StartAsync(RateLimitFailureModes.Local, $"127.0.0.1:{ErrorResponseTests.ClosedPort()},connectTimeout=500");
        using var http = gateway.CreateClient(AcmeKey);

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 6; i++)
        {
            using var response = await SendAsync(http);
            statuses.Add(response.StatusCode);
        }

        Assert.Equal([.. Enumerable.Repeat(HttpStatusCode.OK, 5), HttpStatusCode.TooManyRequests], statuses);
    }

    [Fact]
    public async Task RedisBack_AfterTheRetryInterval_SharedCountersAreUsedAgain()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var gateway = await StartAsync(RateLimitFailureModes.Local, time: time);
        using var http = gateway.CreateClient(AcmeKey);
        (await SendAsync(http)).Dispose();
        var port = _redis.Port;
        _redis.Kill();
        using (var fallback = await SendAsync(http))
        {
            Assert.Equal("5", fallback.Header("x-ratelimit-limit-requests"));
        }

        await _redis.DisposeAsync();
        _redis = await RedisTestServer.StartAsync(port);

        // The Redis client reconnects in the background on its own schedule; each probe happens only once the
        // (fake) retry interval has passed, so advance it between attempts until a probe finds Redis.
        var limit = "";
        for (var attempt = 0; attempt < 100 && limit != "10"; attempt++)
        {
            time.Advance(TimeSpan.FromSeconds(5));
            using var response = await SendAsync(http);
            Assert.NotEqual(HttpStatusCode.InternalServerError, response.StatusCode);
            limit = response.Header("x-ratelimit-limit-requests");
            if (limit != "10")
            {
                await Task.Delay(100); // waiting for the client's reconnect, not timing logic under test
            }
        }

        Assert.Equal("10", limit);
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("Rate limit store available again", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Readiness_NotReadyUntilTheFirstRedisRoundTrip()
    {
        // A frozen Redis accepts the connection but answers nothing: the replica cannot check limits yet.
        _redis.Pause();
        GatewayHost gateway;
        try
        {
            gateway = await GatewayHost.StartAsync(Settings(_simulator)
                .RedisStore($"{_redis.Configuration},connectTimeout=30000", RedisTestServer.NewKeyPrefix())
                .Limit("Redis:ConnectTimeout", "00:00:30")
                .Limit("Tenants:acme:RequestsPerMinute", 10), services => services.AddLlmProxyRateLimiting());
        }
        catch
        {
            _redis.Resume();
            throw;
        }
        await using var _ = gateway;
        using var http = gateway.CreateClient();

        using (var warming = await http.GetAsync("readyz"))
        {
            _redis.Resume();
            Assert.Equal(HttpStatusCode.ServiceUnavailable, warming.StatusCode);
            var connecting = RateLimitCheck(await warming.Content.ReadAsStringAsync());
            Assert.Equal("unhealthy", connecting.GetProperty("status").GetString());
            Assert.Equal("rate limit store: connecting to Redis", connecting.GetProperty("description").GetString());
        }

        // Once Redis answers, the warm-up round trip completes and the replica is ready, with nothing degraded.
        string body = "";
        for (var attempt = 0; attempt < 300; attempt++)
        {
            using var ready = await http.GetAsync("readyz");
            body = await ready.Content.ReadAsStringAsync();
            if (ready.StatusCode == HttpStatusCode.OK)
            {
                break;
            }
            await Task.Delay(100); // waiting for the client's handshake, not timing logic under test
        }
        var check = RateLimitCheck(body);
        Assert.Equal("healthy", check.GetProperty("status").GetString());
        Assert.Equal("rate limit store: Redis", check.GetProperty("description").GetString());
        Assert.Equal(0, WarningsAboutTheStore(gateway));
    }

    private static System.Text.Json.JsonElement RateLimitCheck(string readyz) =>
        System.Text.Json.JsonDocument.Parse(readyz).RootElement.GetProperty("checks").GetProperty("rate_limits").Clone();
}
