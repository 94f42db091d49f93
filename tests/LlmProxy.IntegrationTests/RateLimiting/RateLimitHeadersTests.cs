using System.ClientModel;
using System.Net;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.RateLimiting;
using LlmProxy.Simulator;
using OpenAI.Chat;
using static LlmProxy.IntegrationTests.RateLimiting.RateLimitTesting;

namespace LlmProxy.IntegrationTests.RateLimiting;

/// <summary>OpenAI's x-ratelimit-* headers on every chat completion response the limiter sees, for the tightest limit.</summary>
public sealed class RateLimitHeadersTests : IAsyncLifetime
{
    private SimulatorServer _simulator = null!;

    public async ValueTask InitializeAsync() => _simulator = await SimulatorServer.StartAsync(new SimulatorOptions());

    public async ValueTask DisposeAsync() => await _simulator.DisposeAsync();

    private Task<GatewayHost> StartAsync(Func<GatewaySettings, GatewaySettings>? configure = null, CompletionSignal? completions = null)
    {
        var settings = Settings(_simulator)
            .Limit("Tenants:acme:RequestsPerMinute", 100)
            .Limit("Tenants:acme:TokensPerMinute", 1000)
            .Limit($"Tenants:acme:Keys:{AcmeKeyId}:RequestsPerMinute", 2)
            .Limit($"Tenants:acme:Models:{Model}:TokensPerMinute", 5000);
        return GatewayHost.StartAsync(configure?.Invoke(settings) ?? settings, services =>
        {
            services.AddLlmProxyRateLimiting();
            if (completions is not null)
            {
                services.AddSingleton<Pipeline.IChatRequestCompletionListener>(completions);
            }
        });
    }

    [Fact]
    public async Task Success_CarriesTheTightestRequestAndTokenLimits()
    {
        await using var gateway = await StartAsync();
        using var http = gateway.CreateClient(AcmeKey);

        using var response = await SendAsync(http);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("2", response.Header("x-ratelimit-limit-requests")); // the key's 2, not the tenant's 100
        Assert.Equal("1", response.Header("x-ratelimit-remaining-requests"));
        Assert.Equal("1m0s", response.Header("x-ratelimit-reset-requests"));
        Assert.Equal("1000", response.Header("x-ratelimit-limit-tokens")); // the tenant's 1000, not the model's 5000
        Assert.Equal("940", response.Header("x-ratelimit-remaining-tokens"));
        Assert.Equal("1m0s", response.Header("x-ratelimit-reset-tokens"));
    }

    [Fact]
    public async Task Rejection_CarriesTheHeadersRetryAfterAndOpenAiShape()
    {
        var completions = new CompletionSignal();
        await using var gateway = await StartAsync(completions: completions);
        using var http = gateway.CreateClient(AcmeKey);
        for (var i = 0; i < 2; i++)
        {
            (await SendAsync(http)).Dispose();
            await completions.NextAsync();
        }

        using var response = await SendAsync(http);

        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.Equal("2", response.Header("x-ratelimit-limit-requests"));
        Assert.Equal("0", response.Header("x-ratelimit-remaining-requests"));
        Assert.Matches("^[0-9.]+s$", response.Header("x-ratelimit-reset-requests"));
        Assert.Equal("1000", response.Header("x-ratelimit-limit-tokens"));
        Assert.Equal("980", response.Header("x-ratelimit-remaining-tokens")); // two requests reconciled to 10 tokens each
        // Until the first request leaves the window: 60 s after it, less the time the test took to get here.
        var retryAfterMs = int.Parse(response.Header("retry-after-ms"), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(retryAfterMs, 45_000, 60_000);
        Assert.Equal((int)Math.Ceiling(retryAfterMs / 1000.0), int.Parse(response.Header("Retry-After"), System.Globalization.CultureInfo.InvariantCulture));
        var error = await response.ErrorAsync();
        Assert.Equal(["message", "type", "param", "code"], error.EnumerateObject().Select(p => p.Name));
        Assert.Equal("requests", error.GetProperty("type").GetString());
        Assert.Equal("rate_limit_exceeded", error.GetProperty("code").GetString());
        Assert.StartsWith($"Rate limit reached for key '{AcmeKeyId}' of tenant 'acme' on requests per min (RPM): Limit 2, Used 2, Requested 1. Please try again in ",
            error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stream_CarriesTheHeaders()
    {
        await using var gateway = await StartAsync();
        using var http = gateway.CreateClient(AcmeKey);

        using var response = await SendAsync(http, """{"model":"gpt-test","messages":[{"role":"user","content":"Hello there"}],"max_tokens":50,"stream":true}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("1", response.Header("x-ratelimit-remaining-requests"));
        Assert.Equal("940", response.Header("x-ratelimit-remaining-tokens"));
    }

    [Fact]
    public async Task AfterFailover_TheHeadersSurviveTheClearedResponse()
    {
        await using var failing = await SimulatorServer.StartAsync(new SimulatorOptions());
        failing.Faults.Set(SimulatorFault.Status(500));
        await using var gateway = await StartAsync(s => s.OpenAi(Model, "sim", _simulator.BaseAddress, priority: 1).OpenAi(Model, "failing", failing.BaseAddress, priority: 0));
        using var http = gateway.CreateClient(AcmeKey);

        using var response = await SendAsync(http);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("2", response.Header("x-llmproxy-attempts"));
        Assert.Equal("1", response.Header("x-ratelimit-remaining-requests"));
        Assert.Equal("940", response.Header("x-ratelimit-remaining-tokens"));
    }

    [Fact]
    public async Task CacheHit_CarriesTheHeadersAndIsReconciledToZeroTokens()
    {
        var completions = new CompletionSignal();
        await using var gateway = await StartAsync(s => s.Set("LlmProxy:Cache:Enabled", "true"), completions);
        using var http = gateway.CreateClient(AcmeKey);

        using var miss = await SendAsync(http);
        await completions.NextAsync();
        using var hit = await SendAsync(http);
        await completions.NextAsync();
        using var refused = await SendAsync(http);

        Assert.Equal("MISS", miss.Header("x-llmproxy-cache"));
        Assert.Equal(HttpStatusCode.OK, hit.StatusCode);
        Assert.Equal("HIT", hit.Header("x-llmproxy-cache"));
        // The hit counts as the key's second request of two, and reserves its 60 tokens like any request.
        Assert.Equal("2", hit.Header("x-ratelimit-limit-requests"));
        Assert.Equal("0", hit.Header("x-ratelimit-remaining-requests"));
        Assert.Equal("1m0s", hit.Header("x-ratelimit-reset-requests"));
        Assert.Equal("1000", hit.Header("x-ratelimit-limit-tokens"));
        Assert.Equal($"{1000 - HelloUsage - HelloReservation}", hit.Header("x-ratelimit-remaining-tokens"));
        Assert.Equal("1m0s", hit.Header("x-ratelimit-reset-tokens"));
        // Once over, the hit's reservation is given back in full: only the miss's 10 tokens remain in the window.
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal($"{1000 - HelloUsage}", refused.Header("x-ratelimit-remaining-tokens"));
    }

    [Fact]
    public async Task UpstreamError_CarriesTheHeaders()
    {
        var completions = new CompletionSignal();
        await using var failing = await SimulatorServer.StartAsync(new SimulatorOptions());
        failing.Faults.Set(SimulatorFault.Status(500));
        await using var gateway = await StartAsync(s => s.OpenAi(Model, "sim", failing.BaseAddress), completions);
        using var http = gateway.CreateClient(AcmeKey);

        using var first = await SendAsync(http);
        await completions.NextAsync();
        using var second = await SendAsync(http);

        Assert.Equal(HttpStatusCode.BadGateway, first.StatusCode);
        Assert.Equal("upstream_error", (await first.ErrorAsync()).GetProperty("code").GetString());
        Assert.Equal("2", first.Header("x-ratelimit-limit-requests"));
        Assert.Equal("1", first.Header("x-ratelimit-remaining-requests"));
        Assert.Equal("1m0s", first.Header("x-ratelimit-reset-requests"));
        Assert.Equal("1000", first.Header("x-ratelimit-limit-tokens"));
        Assert.Equal($"{1000 - HelloReservation}", first.Header("x-ratelimit-remaining-tokens"));
        Assert.Equal("1m0s", first.Header("x-ratelimit-reset-tokens"));
        // A failed request still counts as a request; with no usage reported its reservation stands.
        Assert.Equal(HttpStatusCode.BadGateway, second.StatusCode);
        Assert.Equal("0", second.Header("x-ratelimit-remaining-requests"));
        Assert.Equal($"{1000 - 2 * HelloReservation}", second.Header("x-ratelimit-remaining-tokens"));
    }

    [Fact]
    public async Task OpenAiSdk_SeesTheHeadersAndA429()
    {
        await using var gateway = await StartAsync();
        var client = gateway.CreateChatClient(Model, AcmeKey);
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 50 };

        var result = await client.CompleteChatAsync([new UserChatMessage("Hello there")], options);
        Assert.True(result.GetRawResponse().Headers.TryGetValue("x-ratelimit-remaining-requests", out var remaining));
        Assert.Equal("1", remaining);
        await client.CompleteChatAsync([new UserChatMessage("Hello there")], options);

        // The SDK retries 429s on its own (honouring retry-after-ms); a minute-long wait is not what a test wants.
        var noRetry = new OpenAI.OpenAIClientOptions { Endpoint = new Uri(gateway.BaseAddress, "v1"), RetryPolicy = new System.ClientModel.Primitives.ClientRetryPolicy(maxRetries: 0) };
        var once = new ChatClient(Model, new ApiKeyCredential(AcmeKey), noRetry);
        var ex = await Assert.ThrowsAsync<ClientResultException>(() => once.CompleteChatAsync([new UserChatMessage("Hello there")], options));
        Assert.Equal(429, ex.Status);
    }
}
