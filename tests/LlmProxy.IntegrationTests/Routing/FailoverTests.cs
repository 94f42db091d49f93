using System.Net;
using System.Text;
using System.Text.Json;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.IntegrationTests.OpenAiApi;
using LlmProxy.Testing;
using LlmProxy.Simulator;

namespace LlmProxy.IntegrationTests.Routing;

/// <summary>Breakers, failover and selection against simulators with injected faults; breaker time is a fake clock.</summary>
public sealed class FailoverTests : IAsyncLifetime
{
    private const string TenantKey = "sk-tenant-routing-0123456789";
    private const string AdminKey = "sk-admin-routing-0123456789";
    private const string Body = """{"model":"gpt-test","messages":[{"role":"user","content":"route me"}]}""";
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);
    private SimulatorServer _primary = null!;
    private SimulatorServer _fallback = null!;

    public async ValueTask InitializeAsync()
    {
        _primary = await SimulatorServer.StartAsync(new SimulatorOptions());
        _fallback = await SimulatorServer.StartAsync(new SimulatorOptions());
    }

    public async ValueTask DisposeAsync()
    {
        await _primary.DisposeAsync();
        await _fallback.DisposeAsync();
    }

    private Task<GatewayHost> StartGatewayAsync(string primaryUrl, Action<GatewaySettings.DeploymentSettings>? primary = null, Action<GatewaySettings>? more = null)
    {
        var settings = new GatewaySettings()
            .Tenant("acme", TenantKey)
            .AdminKey(AdminKey)
            .Deployment("gpt-test", "primary", "openai", primaryUrl, priority: 0, configure: d =>
            {
                d.Set("Breaker:ConsecutiveFailures", "3").Set("Breaker:BreakDuration", "00:00:30");
                primary?.Invoke(d);
            })
            .OpenAi("gpt-test", "fallback", _fallback.BaseAddress, priority: 1);
        more?.Invoke(settings);
        return GatewayHost.StartAsync(settings, services => services.AddSingleton<TimeProvider>(_time));
    }

    private static async Task<HttpResponseMessage> SendAsync(HttpClient http, string body = Body) =>
        await http.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));

    private static async Task<int> SendManyAsync(HttpClient http, int count, int concurrency = 8)
    {
        var errors = 0;
        await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = concurrency }, async (_, _) =>
        {
            using var response = await SendAsync(http);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                Interlocked.Increment(ref errors);
            }
        });
        return errors;
    }

    private async Task<string> StateOfAsync(HttpClient admin, string id)
    {
        var list = JsonDocument.Parse(await admin.GetStringAsync("/admin/deployments")).RootElement.GetProperty("data");
        return list.EnumerateArray().Single(d => d.GetProperty("id").GetString() == id).GetProperty("state").GetString()!;
    }

    public static TheoryData<string> PrimaryFaults => ["status_500", "refused", "hang"];

    [Theory]
    [MemberData(nameof(PrimaryFaults))]
    public async Task FailingPrimary_NoClientErrors_BreakerOpensThenProbesOnceThenRecovers(string fault)
    {
        var primaryUrl = fault == "refused" ? $"http://127.0.0.1:{ErrorResponseTests.ClosedPort()}/v1" : new Uri(_primary.BaseAddress, "v1").ToString();
        await using var gateway = await StartGatewayAsync(primaryUrl, d => d.Set("Timeouts:FirstByte", "00:00:00.300"));
        using var http = gateway.CreateClient(TenantKey);
        using var admin = gateway.CreateClient(AdminKey);
        if (fault == "status_500")
        {
            _primary.Faults.Set(SimulatorFault.Status(500));
        }
        else if (fault == "hang")
        {
            _primary.Faults.Set(SimulatorFault.Hang());
        }

        // Sequential until the breaker has opened, so the count of failures it takes is exact.
        for (var i = 0; i < 3; i++)
        {
            using var response = await SendAsync(http);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("fallback", response.Headers.GetValues("x-llmproxy-deployment").Single());
            Assert.Equal("2", response.Headers.GetValues("x-llmproxy-attempts").Single());
        }
        Assert.Equal("open", await StateOfAsync(admin, "primary"));
        var primaryCalls = _primary.Requests.Count;
        Assert.Equal(fault == "refused" ? 0 : 3, primaryCalls);

        // While open: no traffic to the primary, no errors for clients.
        Assert.Equal(0, await SendManyAsync(http, 497));
        Assert.Equal(primaryCalls, _primary.Requests.Count);

        // After the break, exactly one probe; it fails, so the breaker opens again.
        _time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(0, await SendManyAsync(http, 20));
        Assert.Equal(fault == "refused" ? 0 : primaryCalls + 1, _primary.Requests.Count);
        Assert.Equal("open", await StateOfAsync(admin, "primary"));

        // The primary heals; after the next break the probe succeeds and traffic returns to it.
        if (fault == "refused")
        {
            return; // nothing listens on that port to heal; the probe path is covered by the other faults
        }
        _primary.Faults.Clear();
        _time.Advance(TimeSpan.FromSeconds(30));
        using (var probe = await SendAsync(http))
        {
            Assert.Equal("primary", probe.Headers.GetValues("x-llmproxy-deployment").Single());
        }
        Assert.Equal("closed", await StateOfAsync(admin, "primary"));
        _primary.Requests.Reset();
        Assert.Equal(0, await SendManyAsync(http, 20));
        Assert.Equal(20, _primary.Requests.Count);
    }

    [Fact]
    public async Task RateLimitedWithRetryAfter_CoolsDownThenTrafficReturns()
    {
        await using var gateway = await StartGatewayAsync(new Uri(_primary.BaseAddress, "v1").ToString());
        using var http = gateway.CreateClient(TenantKey);
        _primary.Faults.Set(SimulatorFault.Status(429, retryAfterSeconds: 20), count: 1);

        using (var first = await SendAsync(http))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            Assert.Equal("fallback", first.Headers.GetValues("x-llmproxy-deployment").Single());
        }
        Assert.Equal(0, await SendManyAsync(http, 30));
        Assert.Equal(1, _primary.Requests.Count);

        _time.Advance(TimeSpan.FromSeconds(20));
        using var back = await SendAsync(http);
        Assert.Equal("primary", back.Headers.GetValues("x-llmproxy-deployment").Single());
    }

    [Fact]
    public async Task WeightedSplit_WithinOnePriority_FollowsTheWeights()
    {
        await using var gateway = await GatewayHost.StartAsync(new GatewaySettings()
            .Tenant("acme", TenantKey)
            .OpenAi("gpt-test", "heavy", _primary.BaseAddress, priority: 0, weight: 3)
            .OpenAi("gpt-test", "light", _fallback.BaseAddress, priority: 0, weight: 1));
        using var http = gateway.CreateClient(TenantKey);

        // Sequential, so no deployment has requests in flight and the split is the weights alone.
        for (var i = 0; i < 400; i++)
        {
            using var response = await SendAsync(http);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // Expected 300 / 100. The count on "heavy" is binomial(400, 0.75): sd 8.7, so +-30 is beyond 3 sd.
        Assert.InRange(_primary.Requests.Count, 270, 330);
        Assert.Equal(400, _primary.Requests.Count + _fallback.Requests.Count);
    }

    [Fact]
    public async Task AllDeploymentsOpen_Returns503WithRetryAfter_WithoutLeaks()
    {
        await using var gateway = await GatewayHost.StartAsync(new GatewaySettings()
            .Tenant("acme", TenantKey)
            .OpenAi("gpt-test", "a", _primary.BaseAddress, priority: 0, configure: d => d.Set("Breaker:ConsecutiveFailures", "1").Set("Breaker:BreakDuration", "00:00:30"))
            .OpenAi("gpt-test", "b", _fallback.BaseAddress, priority: 1, configure: d => d.Set("Breaker:ConsecutiveFailures", "1").Set("Breaker:BreakDuration", "00:00:45")),
            services => services.AddSingleton<TimeProvider>(_time));
        using var http = gateway.CreateClient(TenantKey);
        _primary.Faults.Set(SimulatorFault.Status(500));
        _fallback.Faults.Set(SimulatorFault.Status(503));

        using (var failing = await SendAsync(http))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, failing.StatusCode); // the last failure: b's 503
        }
        _time.Advance(TimeSpan.FromSeconds(10));

        // Warm up, then measure threads and sockets around 1,000 rejected requests.
        for (var i = 0; i < 50; i++)
        {
            (await SendAsync(http)).Dispose();
        }
        var threadsBefore = System.Diagnostics.Process.GetCurrentProcess().Threads.Count;
        var socketsBefore = OpenSockets();
        for (var i = 0; i < 1000; i++)
        {
            using var response = await SendAsync(http);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            if (i == 0)
            {
                var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
                Assert.Equal("no_deployment_available", error.GetProperty("code").GetString());
                // a opens until t+30 (20 s from now), b until t+45: the earliest half-open time is a's.
                Assert.Equal(TimeSpan.FromSeconds(20), response.Headers.RetryAfter?.Delta);
            }
        }
        Assert.Equal(1, _primary.Requests.Count);
        Assert.Equal(1, _fallback.Requests.Count);
        Assert.InRange(System.Diagnostics.Process.GetCurrentProcess().Threads.Count, 0, threadsBefore + 10);
        Assert.InRange(OpenSockets(), 0, socketsBefore + 10);
    }

    [Fact]
    public async Task StreamFailingBeforeFirstByte_FailsOver()
    {
        await using var gateway = await StartGatewayAsync(new Uri(_primary.BaseAddress, "v1").ToString());
        using var http = gateway.CreateClient(TenantKey);
        _primary.Faults.Set(SimulatorFault.MidStreamError(afterChunks: 0));

        using var response = await SendAsync(http, """{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"a b c"}]}""");
        var events = await Sse.ReadDataAsync(response);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("fallback", response.Headers.GetValues("x-llmproxy-deployment").Single());
        Assert.Equal("[DONE]", events[^1]);
        Assert.Equal("Simulated reply to: a b c", Sse.Content(events));
        Assert.DoesNotContain(events, e => e.Contains("\"error\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task StreamFailingAfterFirstByte_EndsWithErrorEvent_NoDuplicatedOutput()
    {
        await using var gateway = await StartGatewayAsync(new Uri(_primary.BaseAddress, "v1").ToString());
        using var http = gateway.CreateClient(TenantKey);
        _primary.Faults.Set(SimulatorFault.MidStreamAbort(afterChunks: 2));

        using var response = await SendAsync(http, """{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"a b c d e f"}]}""");
        var events = await Sse.ReadDataAsync(response);

        Assert.Equal("primary", response.Headers.GetValues("x-llmproxy-deployment").Single());
        Assert.Equal(3, events.Count);
        Assert.Contains("\"error\"", events[^1]);
        Assert.Equal(0, _fallback.Requests.Count);
    }

    [Fact]
    public async Task AdminEndpoints_DrainRecoverReset_NeedTheAdminKey()
    {
        await using var gateway = await StartGatewayAsync(new Uri(_primary.BaseAddress, "v1").ToString());
        using var http = gateway.CreateClient(TenantKey);
        using var admin = gateway.CreateClient(AdminKey);

        using (var asTenant = await http.GetAsync("/admin/deployments"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, asTenant.StatusCode);
        }
        using (var anonymous = await gateway.CreateClient().PostAsync("/admin/deployments/primary/drain", null))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        }

        (await admin.PostAsync("/admin/deployments/primary/drain", null)).EnsureSuccessStatusCode();
        Assert.Equal("drained", await StateOfAsync(admin, "primary"));
        Assert.Equal(0, await SendManyAsync(http, 10));
        Assert.Equal(0, _primary.Requests.Count);

        (await admin.PostAsync("/admin/deployments/primary/recover", null)).EnsureSuccessStatusCode();
        Assert.Equal(0, await SendManyAsync(http, 10));
        Assert.Equal(10, _primary.Requests.Count);

        var before = JsonDocument.Parse(await admin.GetStringAsync("/admin/deployments")).RootElement.GetProperty("data")[0];
        Assert.Equal(10, before.GetProperty("successes").GetInt64());
        Assert.True(before.GetProperty("latency_ewma_ms").GetDouble() > 0);
        var reset = JsonDocument.Parse(await (await admin.PostAsync("/admin/deployments/primary/reset", null)).Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(0, reset.GetProperty("successes").GetInt64());

        using var unknown = await admin.PostAsync("/admin/deployments/ghost/drain", null);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }

    private static int OpenSockets() => Directory.EnumerateFileSystemEntries("/proc/self/fd")
        .Count(fd => new FileInfo(fd).LinkTarget?.StartsWith("socket:", StringComparison.Ordinal) == true);
}
