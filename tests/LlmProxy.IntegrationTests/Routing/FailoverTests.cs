using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.IntegrationTests.OpenAiApi;
using LlmProxy.Simulator;

namespace LlmProxy.IntegrationTests.Routing;

/// <summary>Breakers, failover and selection against simulators with injected faults; breaker time is a fake clock.</summary>
/// <remarks>
/// Runs alone, after the parallel collections: its leak check counts the test process's threads and sockets, and its
/// deadline and timeout cases run on real time, so other tests' traffic would blur both.
/// </remarks>
[Collection(FailoverCollection.Name)]
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

    private static async Task<JsonElement> DeploymentAsync(HttpClient admin, string id)
    {
        var list = JsonDocument.Parse(await admin.GetStringAsync("/admin/deployments")).RootElement.GetProperty("data");
        return list.EnumerateArray().Single(d => d.GetProperty("id").GetString() == id);
    }

    private static async Task<string> StateOfAsync(HttpClient admin, string id) =>
        (await DeploymentAsync(admin, id)).GetProperty("state").GetString()!;

    private static async Task<JsonElement> ErrorOfAsync(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");

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
        using var admin = gateway.CreateClient(AdminKey);
        _primary.Faults.Set(SimulatorFault.Status(429, retryAfterSeconds: 20), count: 1);

        using (var first = await SendAsync(http))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            Assert.Equal("fallback", first.Headers.GetValues("x-llmproxy-deployment").Single());
        }
        Assert.Equal(0, await SendManyAsync(http, 30));
        Assert.Equal(1, _primary.Requests.Count);

        // One second before Retry-After runs out the deployment is still cooling: no traffic yet.
        _time.Advance(TimeSpan.FromSeconds(19));
        Assert.Equal(0, await SendManyAsync(http, 10));
        Assert.Equal(1, _primary.Requests.Count);
        var primary = await DeploymentAsync(admin, "primary");
        Assert.Equal("open", primary.GetProperty("state").GetString());
        Assert.Equal(_time.GetUtcNow() + TimeSpan.FromSeconds(1), primary.GetProperty("cooldown_until").GetDateTimeOffset());

        _time.Advance(TimeSpan.FromSeconds(1));
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

    [Fact]
    public async Task RetryBudget_MaxAttempts_StopsThereAndReturnsTheLastError()
    {
        await using var third = await SimulatorServer.StartAsync(new SimulatorOptions());
        await using var gateway = await GatewayHost.StartAsync(new GatewaySettings()
            .Tenant("acme", TenantKey)
            .Set("LlmProxy:Models:gpt-test:Retry:MaxAttempts", "2")
            .OpenAi("gpt-test", "a", _primary.BaseAddress, priority: 0)
            .OpenAi("gpt-test", "b", _fallback.BaseAddress, priority: 1)
            .OpenAi("gpt-test", "c", third.BaseAddress, priority: 2));
        using var http = gateway.CreateClient(TenantKey);
        _primary.Faults.Set(SimulatorFault.Status(500));
        _fallback.Faults.Set(SimulatorFault.Status(503));
        third.Faults.Set(SimulatorFault.Status(500));

        using var response = await SendAsync(http);

        // b's 503 is the last failure; a's would have been a 502, and c was never tried.
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        var error = await ErrorOfAsync(response);
        Assert.Equal("upstream_unavailable", error.GetProperty("code").GetString());
        Assert.Contains("'b'", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal("2", response.Headers.GetValues("x-llmproxy-attempts").Single());
        Assert.Equal(1, _primary.Requests.Count);
        Assert.Equal(1, _fallback.Requests.Count);
        Assert.Equal(0, third.Requests.Count);
    }

    [Fact]
    public async Task RetryBudget_Deadline_CutsTheAttemptShortAndStopsBeforeTheNextCandidate()
    {
        // Real time here: the deadline is measured on the gateway's clock while the attempt is cut on the wall clock.
        await using var third = await SimulatorServer.StartAsync(new SimulatorOptions());
        await using var gateway = await GatewayHost.StartAsync(new GatewaySettings()
            .Tenant("acme", TenantKey)
            .Set("LlmProxy:Models:gpt-test:Retry:Deadline", "00:00:01")
            .OpenAi("gpt-test", "a", _primary.BaseAddress, priority: 0)
            .OpenAi("gpt-test", "b", _fallback.BaseAddress, priority: 1, configure: d => d.Set("Timeouts:FirstByte", "00:00:30"))
            .OpenAi("gpt-test", "c", third.BaseAddress, priority: 2));
        using var http = gateway.CreateClient(TenantKey);
        _primary.Faults.Set(SimulatorFault.Status(500));
        _fallback.Faults.Set(SimulatorFault.Hang());

        var stopwatch = System.Diagnostics.Stopwatch.StartNew();
        using var response = await SendAsync(http);
        var elapsed = stopwatch.Elapsed;

        // b hangs: the deadline, not its 30 s first-byte timeout, ends its attempt, and no time is left for c.
        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Equal("upstream_timeout", (await ErrorOfAsync(response)).GetProperty("code").GetString());
        Assert.Equal("2", response.Headers.GetValues("x-llmproxy-attempts").Single());
        Assert.InRange(elapsed, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(10));
        Assert.Equal(1, _fallback.Requests.Count);
        Assert.Equal(0, third.Requests.Count);
    }

    [Fact]
    public async Task TotalTimeout_StreamOutlastingIt_EndsWithATimeoutErrorEvent()
    {
        // Each gap between chunks (100 ms) is far under the first-byte timeout (2 s); the stream as a whole (about
        // 4 s for 40 words) is far over the total timeout (1 s).
        await using var slow = await SimulatorServer.StartAsync(new SimulatorOptions { ChunkDelay = TimeSpan.FromMilliseconds(100) });
        await using var gateway = await StartGatewayAsync(new Uri(slow.BaseAddress, "v1").ToString(),
            d => d.Set("Timeouts:FirstByte", "00:00:02").Set("Timeouts:Total", "00:00:01"));
        using var http = gateway.CreateClient(TenantKey);
        using var admin = gateway.CreateClient(AdminKey);
        var words = string.Join(' ', Enumerable.Range(0, 40).Select(i => "w" + i));

        var stopwatch = System.Diagnostics.Stopwatch.StartNew();
        using var response = await SendAsync(http, $$"""{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"{{words}}"}]}""");
        var events = await Sse.ReadDataAsync(response);
        var elapsed = stopwatch.Elapsed;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("primary", response.Headers.GetValues("x-llmproxy-deployment").Single());
        Assert.InRange(elapsed, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(3.5));
        // Part of the reply, then one error event naming the timeout, and no [DONE]: the client cannot mistake it for a whole answer.
        var error = JsonDocument.Parse(events[^1]).RootElement.GetProperty("error");
        Assert.Equal("upstream_timeout", error.GetProperty("code").GetString());
        Assert.DoesNotContain("[DONE]", events);
        var content = Sse.Content(events.Take(events.Count - 1));
        Assert.NotEmpty(content);
        Assert.StartsWith(content, "Simulated reply to: " + words, StringComparison.Ordinal);
        Assert.NotEqual("Simulated reply to: " + words, content);
        Assert.Equal(0, _fallback.Requests.Count);
        Assert.Equal(1, (await DeploymentAsync(admin, "primary")).GetProperty("failures").GetInt64());
    }

    [Fact]
    public async Task FirstByteTimeout_StreamStallingMidway_EndsWithATimeoutErrorEvent()
    {
        // The first chunk comes at once, the next after 1.5 s: longer than the first-byte (idle) timeout of 1 s.
        await using var stalling = await SimulatorServer.StartAsync(new SimulatorOptions { ChunkDelay = TimeSpan.FromSeconds(1.5) });
        await using var gateway = await StartGatewayAsync(new Uri(stalling.BaseAddress, "v1").ToString(), d => d.Set("Timeouts:FirstByte", "00:00:01"));
        using var http = gateway.CreateClient(TenantKey);

        using var response = await SendAsync(http, """{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"a b c d e f"}]}""");
        var events = await Sse.ReadDataAsync(response);

        Assert.Equal("primary", response.Headers.GetValues("x-llmproxy-deployment").Single());
        Assert.Equal("upstream_timeout", JsonDocument.Parse(events[^1]).RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.DoesNotContain("[DONE]", events);
        Assert.Equal(0, _fallback.Requests.Count);
    }

    [Fact]
    public async Task TotalTimeout_BeforeAnythingWasSent_FailsOver()
    {
        // The primary would answer after 3 s, inside its first-byte timeout (10 s) but past its total timeout (0.5 s).
        await using var slow = await SimulatorServer.StartAsync(new SimulatorOptions { Latency = TimeSpan.FromSeconds(3) });
        await using var gateway = await StartGatewayAsync(new Uri(slow.BaseAddress, "v1").ToString(),
            d => d.Set("Timeouts:FirstByte", "00:00:10").Set("Timeouts:Total", "00:00:00.500"));
        using var http = gateway.CreateClient(TenantKey);
        using var admin = gateway.CreateClient(AdminKey);

        var stopwatch = System.Diagnostics.Stopwatch.StartNew();
        using var response = await SendAsync(http);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("fallback", response.Headers.GetValues("x-llmproxy-deployment").Single());
        Assert.Equal("2", response.Headers.GetValues("x-llmproxy-attempts").Single());
        Assert.InRange(stopwatch.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(2.5));
        Assert.Equal("timeout", (await DeploymentAsync(admin, "primary")).GetProperty("last_error").GetString());
    }

    [Fact]
    public async Task ConnectTimeout_UpstreamNotAcceptingConnections_FailsOverWithinIt()
    {
        using var blackhole = await UnacceptedPort.OpenAsync();
        // The first-byte timeout (20 s) would also end a hanging connect; the connect timeout (0.5 s) must end it first.
        await using var gateway = await StartGatewayAsync($"http://127.0.0.1:{blackhole.Port}/v1",
            d => d.Set("Timeouts:Connect", "00:00:00.500").Set("Timeouts:FirstByte", "00:00:20"));
        using var http = gateway.CreateClient(TenantKey);
        using var admin = gateway.CreateClient(AdminKey);

        var stopwatch = System.Diagnostics.Stopwatch.StartNew();
        using var response = await SendAsync(http);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("fallback", response.Headers.GetValues("x-llmproxy-deployment").Single());
        Assert.InRange(stopwatch.Elapsed, TimeSpan.FromSeconds(0.4), TimeSpan.FromSeconds(5));
        var primary = await DeploymentAsync(admin, "primary");
        Assert.Equal(1, primary.GetProperty("failures").GetInt64());
        Assert.Equal("timeout", primary.GetProperty("last_error").GetString());
    }

    [Fact]
    public async Task ClientError_IsPassedThrough_NotRetried_NotCountedAgainstTheDeployment()
    {
        await using var gateway = await StartGatewayAsync(new Uri(_primary.BaseAddress, "v1").ToString());
        using var http = gateway.CreateClient(TenantKey);
        using var admin = gateway.CreateClient(AdminKey);
        _primary.Faults.Set(SimulatorFault.Status(400));

        // More than the primary's 3 consecutive failures, had they counted.
        for (var i = 0; i < 5; i++)
        {
            using var response = await SendAsync(http);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            var error = await ErrorOfAsync(response);
            Assert.Equal("The request was invalid.", error.GetProperty("message").GetString());
            Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
            Assert.Equal("1", response.Headers.GetValues("x-llmproxy-attempts").Single());
        }

        Assert.Equal(5, _primary.Requests.Count);
        Assert.Equal(0, _fallback.Requests.Count);
        var primary = await DeploymentAsync(admin, "primary");
        Assert.Equal("closed", primary.GetProperty("state").GetString());
        Assert.Equal(0, primary.GetProperty("consecutive_failures").GetInt32());
        Assert.Equal(0, primary.GetProperty("failures").GetInt64());
    }

    [Fact]
    public async Task Failover_AfterThePrimaryReadTheBody_FallbackGetsTheSameWholeBody()
    {
        await using var gateway = await StartGatewayAsync(new Uri(_primary.BaseAddress, "v1").ToString());
        using var http = gateway.CreateClient(TenantKey);
        // The primary reads the request before failing it, so the second attempt needs a body of its own from the start.
        _primary.Faults.Set(SimulatorFault.Status(500));

        using var response = await SendAsync(http);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("2", response.Headers.GetValues("x-llmproxy-attempts").Single());
        var sentToPrimary = Assert.Single(_primary.Requests.Recent);
        var sentToFallback = Assert.Single(_fallback.Requests.Recent);
        Assert.Contains("route me", sentToPrimary.Body, StringComparison.Ordinal);
        Assert.Equal(sentToPrimary.Body, sentToFallback.Body);
        // Sent with its length, not chunked: some upstreams refuse chunked request bodies.
        Assert.Equal(Encoding.UTF8.GetByteCount(sentToFallback.Body).ToString(CultureInfo.InvariantCulture), sentToFallback.Header("Content-Length"));
        Assert.Null(sentToFallback.Header("Transfer-Encoding"));
    }

    [Fact]
    public async Task Recover_BreakersTrippedByRealFailures_ClosesThemAndTrafficReturns()
    {
        // Both breakers trip on the second failure: two in a row, and a failure ratio of 1 over a throughput of 2.
        await using var gateway = await StartGatewayAsync(new Uri(_primary.BaseAddress, "v1").ToString(), d => d
            .Set("Breaker:ConsecutiveFailures", "2").Set("Breaker:MinimumThroughput", "2").Set("Breaker:FailureRatio", "0.5"));
        using var http = gateway.CreateClient(TenantKey);
        using var admin = gateway.CreateClient(AdminKey);
        _primary.Faults.Set(SimulatorFault.Status(500));
        Assert.Equal(0, await SendManyAsync(http, 2, concurrency: 1));
        Assert.Equal("open", await StateOfAsync(admin, "primary"));
        _primary.Faults.Clear();
        Assert.Equal(0, await SendManyAsync(http, 5));
        Assert.Equal(2, _primary.Requests.Count);

        // Well before the break is over, the operator puts it back.
        _time.Advance(TimeSpan.FromSeconds(5));
        using (var recovered = await admin.PostAsync("/admin/deployments/primary/recover", null))
        {
            recovered.EnsureSuccessStatusCode();
            Assert.Equal("closed", JsonDocument.Parse(await recovered.Content.ReadAsStringAsync()).RootElement.GetProperty("state").GetString());
        }

        _primary.Requests.Reset();
        Assert.Equal(0, await SendManyAsync(http, 10, concurrency: 1));
        Assert.Equal(10, _primary.Requests.Count);
        Assert.Equal("closed", await StateOfAsync(admin, "primary"));
    }

    [Fact]
    public async Task BreakerTransitionsAndFailovers_AreLoggedAsStructuredEvents()
    {
        var log = new EventLog();
        await using var gateway = await GatewayHost.StartAsync(new GatewaySettings()
            .Tenant("acme", TenantKey)
            .OpenAi("gpt-test", "primary", _primary.BaseAddress, priority: 0, configure: d => d.Set("Breaker:ConsecutiveFailures", "3"))
            .OpenAi("gpt-test", "fallback", _fallback.BaseAddress, priority: 1),
            services => services.AddSingleton<TimeProvider>(_time).AddSingleton<ILoggerProvider>(log));
        using var http = gateway.CreateClient(TenantKey);
        _primary.Faults.Set(SimulatorFault.Status(500));

        Assert.Equal(0, await SendManyAsync(http, 3, concurrency: 1));
        _primary.Faults.Clear();
        _time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(0, await SendManyAsync(http, 1));

        var failovers = log.Events.Where(e => e.Id == 2002).ToList();
        Assert.Equal(3, failovers.Count);
        Assert.All(failovers, e =>
        {
            Assert.Equal(LogLevel.Information, e.Level);
            Assert.Equal("gpt-test", e.Properties["Model"]);
            Assert.Equal("primary", e.Properties["FromDeployment"]);
            Assert.Equal("fallback", e.Properties["ToDeployment"]);
            Assert.Equal("status_500", e.Properties["Reason"]);
        });
        var transitions = log.Events.Where(e => e.Id == 2101).ToList();
        Assert.Equal(new string?[] { "Open", "HalfOpen", "Closed" }, transitions.Select(e => e.Properties["State"]));
        Assert.All(transitions, e =>
        {
            Assert.Equal(LogLevel.Warning, e.Level);
            Assert.Equal("primary", e.Properties["DeploymentId"]);
            Assert.Equal("consecutive failures", e.Properties["Rule"]);
        });
    }

    [Fact]
    public async Task DeploymentRemovedAndAddedBackByReload_GetsBreakersOfItsOwn()
    {
        var file = Path.Combine(Path.GetTempPath(), $"llmproxy-routing-{Guid.NewGuid():N}.json");
        try
        {
            // Only the ratio breaker can open: it needs 2 requests, half of them failing.
            WriteRoutes(file, withPrimary: true);
            await using var gateway = await GatewayHost.StartAsync(new GatewaySettings().Tenant("acme", TenantKey).AdminKey(AdminKey),
                services => services.AddSingleton<TimeProvider>(_time), c => c.AddJsonFile(file, optional: false, reloadOnChange: false));
            using var http = gateway.CreateClient(TenantKey);
            using var admin = gateway.CreateClient(AdminKey);
            using (var first = await SendAsync(http))
            {
                Assert.Equal("primary", first.Headers.GetValues("x-llmproxy-deployment").Single());
            }
            Assert.Equal("closed", await StateOfAsync(admin, "primary"));

            WriteRoutes(file, withPrimary: false);
            (await admin.PostAsync("/admin/config/reload", null)).EnsureSuccessStatusCode();
            using (var removed = await admin.PostAsync("/admin/deployments/primary/recover", null))
            {
                Assert.Equal(HttpStatusCode.NotFound, removed.StatusCode);
            }
            WriteRoutes(file, withPrimary: true);
            (await admin.PostAsync("/admin/config/reload", null)).EnsureSuccessStatusCode();

            _primary.Faults.Set(SimulatorFault.Status(500));
            for (var i = 0; i < 2; i++)
            {
                using var failed = await SendAsync(http);
                Assert.Equal(HttpStatusCode.BadGateway, failed.StatusCode);
            }

            // The breaker that opened is the one the gateway reports, routes around and answers for.
            var primary = await DeploymentAsync(admin, "primary");
            Assert.Equal("open", primary.GetProperty("state").GetString());
            Assert.Equal(_time.GetUtcNow() + TimeSpan.FromSeconds(30), primary.GetProperty("open_until").GetDateTimeOffset());
            using (var unavailable = await SendAsync(http))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, unavailable.StatusCode);
                Assert.Equal("no_deployment_available", (await ErrorOfAsync(unavailable)).GetProperty("code").GetString());
                Assert.Equal(TimeSpan.FromSeconds(30), unavailable.Headers.RetryAfter?.Delta);
            }
            Assert.Equal(3, _primary.Requests.Count);

            // And the operator's recover closes it.
            _primary.Faults.Clear();
            (await admin.PostAsync("/admin/deployments/primary/recover", null)).EnsureSuccessStatusCode();
            Assert.Equal("closed", await StateOfAsync(admin, "primary"));
            using var served = await SendAsync(http);
            Assert.Equal(HttpStatusCode.OK, served.StatusCode);
            Assert.Equal("primary", served.Headers.GetValues("x-llmproxy-deployment").Single());
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>
    /// gpt-test served by "primary" alone, or (while it is removed) by "fallback" alone. The model stays configured
    /// so that a reload without "primary" is valid.
    /// </summary>
    private void WriteRoutes(string file, bool withPrimary)
    {
        var deployments = new Dictionary<string, object>();
        if (withPrimary)
        {
            deployments["primary"] = new
            {
                Provider = "openai", BaseUrl = new Uri(_primary.BaseAddress, "v1").ToString(),
                Breaker = new { ConsecutiveFailures = 100, FailureRatio = 0.5, MinimumThroughput = 2, BreakDuration = "00:00:30" },
            };
        }
        else
        {
            deployments["fallback"] = new { Provider = "openai", BaseUrl = new Uri(_fallback.BaseAddress, "v1").ToString() };
        }
        File.WriteAllText(file, JsonSerializer.Serialize(new { LlmProxy = new { Models = new Dictionary<string, object> { ["gpt-test"] = new { Deployments = deployments } } } }));
    }

    private static int OpenSockets() => Directory.EnumerateFileSystemEntries("/proc/self/fd")
        .Count(fd => new FileInfo(fd).LinkTarget?.StartsWith("socket:", StringComparison.Ordinal) == true);

    /// <summary>
    /// A loopback port where a connect hangs instead of being refused: a listener that never accepts, with its
    /// accept queue filled. Linux then drops further SYNs, so a client's connect waits for its own timeout.
    /// </summary>
    private sealed class UnacceptedPort : IDisposable
    {
        private readonly Socket _listener;
        private readonly List<Socket> _queued = [];

        private UnacceptedPort(Socket listener) => _listener = listener;

        public int Port => ((IPEndPoint)_listener.LocalEndPoint!).Port;

        public static async Task<UnacceptedPort> OpenAsync()
        {
            var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(0);
            var port = new UnacceptedPort(listener);
            for (var i = 0; i < 16; i++)
            {
                var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                var connect = client.ConnectAsync(listener.LocalEndPoint!);
                if (await Task.WhenAny(connect, Task.Delay(TimeSpan.FromMilliseconds(300))) != connect)
                {
                    client.Dispose(); // this one hangs: the queue is full
                    return port;
                }
                port._queued.Add(client);
            }
            port.Dispose();
            throw new InvalidOperationException("Connects to a listener that never accepts kept succeeding; cannot make a connect hang here.");
        }

        public void Dispose()
        {
            foreach (var socket in _queued)
            {
                socket.Dispose();
            }
            _listener.Dispose();
        }
    }

    /// <summary>Log events with their ids and structured properties, the way a log pipeline sees them.</summary>
    private sealed class EventLog : ILoggerProvider
    {
        private readonly ConcurrentQueue<LogEvent> _events = new();

        public IReadOnlyCollection<LogEvent> Events => _events;

        public ILogger CreateLogger(string categoryName) => new Logger(_events);

        public void Dispose()
        {
        }

        private sealed class Logger(ConcurrentQueue<LogEvent> events) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                var properties = (state as IEnumerable<KeyValuePair<string, object?>> ?? [])
                    .ToDictionary(p => p.Key, p => Convert.ToString(p.Value, CultureInfo.InvariantCulture));
                events.Enqueue(new LogEvent(eventId.Id, logLevel, properties));
            }
        }
    }

    private sealed record LogEvent(int Id, LogLevel Level, IReadOnlyDictionary<string, string?> Properties);
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class FailoverCollection
{
    public const string Name = "Failover (runs alone)";
}
