using System.Diagnostics.Metrics;
using System.Text;
using System.Text.Json;
using LlmProxy.Configuration;
using LlmProxy.OpenAi;
using LlmProxy.Pipeline;
using LlmProxy.RateLimiting;
using LlmProxy.Routing;
using LlmProxy.Tenancy;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace LlmProxy.Tests.RateLimiting;

public sealed class RateLimitingChatMiddlewareTests : IDisposable
{
    private const string HelloBody = """{"model":"gpt-4o","messages":[{"role":"user","content":"Hello there"}],"max_tokens":50}""";
    private readonly FakeTimeProvider _time = new();
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly LocalRateLimitStore _store;
    private readonly List<(string Limit, string Tenant)> _rejections = [];
    private readonly MeterListener _listener = new();

    public RateLimitingChatMiddlewareTests()
    {
        _store = new LocalRateLimitStore(_time);
        var factory = _services.GetRequiredService<IMeterFactory>();
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter.Scope, factory) && instrument.Name == "llmproxy.ratelimit.rejections")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            var values = tags.ToArray().ToDictionary(t => t.Key, t => (string)t.Value!);
            _rejections.Add((values["limit"], values["tenant"]));
        });
        _listener.Start();
    }

    public void Dispose()
    {
        _listener.Dispose();
        _services.Dispose();
    }

    private RateLimitingChatMiddleware Create(RateLimitOptions options)
    {
        var policies = new RateLimitPolicyProvider(new RateLimitPolicyProviderTests.MutableOptionsMonitor(options), NullLogger<RateLimitPolicyProvider>.Instance);
        var factory = _services.GetRequiredService<IMeterFactory>();
        var metrics = new RateLimitMetrics(factory, new LlmProxy.Telemetry.GatewayMetrics(factory), policies, _time);
        return new RateLimitingChatMiddleware(policies, _store, metrics, _time, NullLogger<RateLimitingChatMiddleware>.Instance);
    }

    private static RateLimitOptions Limits(RateLimitValues values) =>
        new() { Tenants = { ["acme"] = new TenantRateLimitOptions { RequestsPerMinute = values.RequestsPerMinute, TokensPerMinute = values.TokensPerMinute, ConcurrentRequests = values.ConcurrentRequests } } };

    private static (ChatContext Chat, ResponseStartFeature Response) Context(string body = HelloBody)
    {
        var http = new DefaultHttpContext();
        var response = new ResponseStartFeature();
        http.Features.Set<IHttpResponseFeature>(response);
        http.Features.Set<IHttpResponseBodyFeature>(new StreamResponseBodyFeature(new MemoryStream()));
        Assert.True(ChatRequestParser.TryParse(Encoding.UTF8.GetBytes(body), out var request, out _));
        var identity = new TenantIdentity(new Tenant("acme", null), "ci");
        return (new ChatContext(http, identity, request!, new ModelRoute("gpt-4o", [], new RetryBudgetOptions())), response);
    }

    private async Task<long> TokensInWindowAsync() =>
        (await _store.AcquireAsync(new RateLimitRequest("acme", "probe", [new RateLimitScope("t", RateLimitLevel.Tenant, "acme", new ScopeLimits(null, 1_000_000, null, null, null))], 0,
            BudgetPeriods.At(_time.GetUtcNow())))).Usage[0].Tokens;

    [Fact]
    public async Task Invoke_Admitted_ReservesEstimateAndReconcilesWithUsage()
    {
        var middleware = Create(Limits(new RateLimitValues { TokensPerMinute = 1_000_000 }));
        var (chat, _) = Context();
        long reservedDuringCall = 0;

        await middleware.InvokeAsync(chat, async c =>
        {
            reservedDuringCall = await TokensInWindowAsync();
            c.Usage = new TokenUsage(5, 5, 10);
        });

        Assert.Equal(10 + 50, reservedDuringCall); // prompt estimate 10 + max_tokens 50
        Assert.Equal(10, await TokensInWindowAsync());
    }

    [Fact]
    public async Task Invoke_CacheHit_ReconcilesToZeroTokensButCountsTheRequest()
    {
        var middleware = Create(Limits(new RateLimitValues { RequestsPerMinute = 1, TokensPerMinute = 1_000_000 }));
        var (chat, _) = Context();

        await middleware.InvokeAsync(chat, c =>
        {
            c.CacheHit = true;
            c.Usage = new TokenUsage(5, 5, 10);
            return Task.CompletedTask;
        });

        Assert.Equal(0, await TokensInWindowAsync());
        var (second, _) = Context();
        await middleware.InvokeAsync(second, _ => throw new InvalidOperationException("must not be called"));
        Assert.Equal(429, second.HttpContext.Response.StatusCode);
    }

    [Fact]
    public async Task Invoke_OverRequestLimit_Writes429WithOpenAiShapeAndHeaders()
    {
        var middleware = Create(Limits(new RateLimitValues { RequestsPerMinute = 1, TokensPerMinute = 1000 }));
        await middleware.InvokeAsync(Context().Chat, _ => Task.CompletedTask);
        _time.Advance(TimeSpan.FromSeconds(15.5));
        var (chat, response) = Context();
        var called = false;

        await middleware.InvokeAsync(chat, _ => { called = true; return Task.CompletedTask; });
        await response.StartAsync();

        Assert.False(called);
        var http = chat.HttpContext.Response;
        Assert.Equal(429, http.StatusCode);
        Assert.Equal("45", http.Headers.RetryAfter.ToString());
        Assert.Equal("44500", http.Headers["retry-after-ms"].ToString());
        Assert.Equal("1", http.Headers["x-ratelimit-limit-requests"].ToString());
        Assert.Equal("0", http.Headers["x-ratelimit-remaining-requests"].ToString());
        Assert.Equal("44.5s", http.Headers["x-ratelimit-reset-requests"].ToString());
        Assert.Equal("1000", http.Headers["x-ratelimit-limit-tokens"].ToString());
        Assert.Equal("940", http.Headers["x-ratelimit-remaining-tokens"].ToString());
        var error = Error(chat);
        Assert.Equal("requests", error.GetProperty("type").GetString());
        Assert.Equal("rate_limit_exceeded", error.GetProperty("code").GetString());
        Assert.Equal(JsonValueKind.Null, error.GetProperty("param").ValueKind);
        Assert.Equal("Rate limit reached for tenant 'acme' on requests per min (RPM): Limit 1, Used 1, Requested 1. Please try again in 44.5s.",
            error.GetProperty("message").GetString());
        Assert.Equal("rate_limit_exceeded", chat.ErrorCode);
        Assert.Equal([("requests", "acme")], _rejections);
    }

    [Fact]
    public async Task Invoke_RequestLargerThanTheTokenLimit_Writes400NamingTheLimit()
    {
        var middleware = Create(Limits(new RateLimitValues { TokensPerMinute = 40 }));
        var (chat, _) = Context();

        await middleware.InvokeAsync(chat, _ => throw new InvalidOperationException("must not be called"));

        Assert.Equal(400, chat.HttpContext.Response.StatusCode);
        var error = Error(chat);
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal("tokens_exceed_limit", error.GetProperty("code").GetString());
        Assert.Contains("limit of 40 tokens per minute for tenant 'acme'", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Contains("about 60 tokens", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal([("tokens", "acme")], _rejections);
    }

    [Fact]
    public async Task Invoke_NextThrows_StillReleasesTheConcurrencySlot()
    {
        var middleware = Create(Limits(new RateLimitValues { ConcurrentRequests = 1 }));

        await Assert.ThrowsAsync<OperationCanceledException>(() => middleware.InvokeAsync(Context().Chat, _ => throw new OperationCanceledException()));

        var (chat, _) = Context();
        var called = false;
        await middleware.InvokeAsync(chat, _ => { called = true; return Task.CompletedTask; });
        Assert.True(called);
    }

    [Fact]
    public async Task Invoke_ConcurrencyFull_Writes429()
    {
        var middleware = Create(Limits(new RateLimitValues { ConcurrentRequests = 1 }));
        var release = new TaskCompletionSource();
        var first = middleware.InvokeAsync(Context().Chat, _ => release.Task);
        var (chat, _) = Context();

        await middleware.InvokeAsync(chat, _ => Task.CompletedTask);
        release.SetResult();
        await first;

        Assert.Equal(429, chat.HttpContext.Response.StatusCode);
        Assert.Contains("Too many concurrent requests for tenant 'acme': Limit 1, In flight 1", Error(chat).GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal([("concurrency", "acme")], _rejections);
    }

    [Fact]
    public async Task Invoke_NoLimitsForTheTenant_JustCallsNext()
    {
        var middleware = Create(new RateLimitOptions { Tenants = { ["other"] = new TenantRateLimitOptions { RequestsPerMinute = 1 } } });
        var (chat, response) = Context();
        var calls = 0;

        for (var i = 0; i < 3; i++)
        {
            await middleware.InvokeAsync(chat, _ => { calls++; return Task.CompletedTask; });
        }
        await response.StartAsync();

        Assert.Equal(3, calls);
        Assert.False(chat.HttpContext.Response.Headers.ContainsKey("x-ratelimit-limit-requests"));
    }

    private static JsonElement Error(ChatContext chat)
    {
        var body = chat.HttpContext.Features.Get<IHttpResponseBodyFeature>()!.Stream;
        body.Position = 0;
        return JsonDocument.Parse(body).RootElement.GetProperty("error").Clone();
    }

    /// <summary>A response feature that runs OnStarting callbacks when told to, as a server does when the response starts.</summary>
    private sealed class ResponseStartFeature : HttpResponseFeature
    {
        private readonly List<(Func<object, Task> Callback, object State)> _starting = [];

        public override void OnStarting(Func<object, Task> callback, object state) => _starting.Add((callback, state));

        public async Task StartAsync()
        {
            for (var i = _starting.Count - 1; i >= 0; i--)
            {
                await _starting[i].Callback(_starting[i].State);
            }
        }
    }
}
