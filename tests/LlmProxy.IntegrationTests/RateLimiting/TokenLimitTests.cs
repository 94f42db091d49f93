using System.Net;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.RateLimiting;
using LlmProxy.Simulator;
using static LlmProxy.IntegrationTests.RateLimiting.RateLimitTesting;

namespace LlmProxy.IntegrationTests.RateLimiting;

/// <summary>Tokens per minute with the simulator's deterministic usage: reservations, reconciliation, refusals.</summary>
public sealed class TokenLimitTests : IAsyncLifetime
{
    private SimulatorServer _simulator = null!;

    public async ValueTask InitializeAsync() => _simulator = await SimulatorServer.StartAsync(new SimulatorOptions());

    public async ValueTask DisposeAsync() => await _simulator.DisposeAsync();

    public static TheoryData<string> Stores => [RateLimitStores.Local, RateLimitStores.Redis];

    private Task<GatewayHost> StartAsync(string store, int tokensPerMinute, CompletionSignal completions)
    {
        var settings = Settings(_simulator).Limit("Tenants:acme:TokensPerMinute", tokensPerMinute);
        if (store == RateLimitStores.Redis)
        {
            settings.RedisStore(RedisTestServer.SharedConfiguration(), RedisTestServer.NewKeyPrefix());
        }
        return GatewayHost.StartAsync(settings, services =>
        {
            services.AddLlmProxyRateLimiting();
            services.AddSingleton<Pipeline.IChatRequestCompletionListener>(completions);
        });
    }

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task KnownUsage_DrainsTheBudgetAsComputed_ReconciliationReturnsTheOverReservation(string store)
    {
        var completions = new CompletionSignal();
        await using var gateway = await StartAsync(store, 200, completions);
        using var http = gateway.CreateClient(AcmeKey);

        // Request n is admitted with 10 * (n - 1) reconciled + 60 reserved <= 200 tokens: n = 1..15.
        var remaining = new List<int>();
        for (var n = 1; n <= 15; n++)
        {
            using var response = await SendAsync(http);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("200", response.Header("x-ratelimit-limit-tokens"));
            remaining.Add(int.Parse(response.Header("x-ratelimit-remaining-tokens"), System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal(HelloUsage, (await completions.NextAsync()).Chat!.Usage!.TotalTokens);
        }

        Assert.Equal(Enumerable.Range(1, 15).Select(n => 200 - HelloUsage * (n - 1) - HelloReservation), remaining);
        using var refused = await SendAsync(http);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        var error = await refused.ErrorAsync();
        Assert.Equal("tokens", error.GetProperty("type").GetString());
        Assert.Equal("rate_limit_exceeded", error.GetProperty("code").GetString());
        Assert.StartsWith("Rate limit reached for tenant 'acme' on tokens per min (TPM): Limit 200, Used 150, Requested 60.",
            error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal("50", refused.Header("x-ratelimit-remaining-tokens"));
        var retryAfter = int.Parse(refused.Header("Retry-After"), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(retryAfter, 50, 60);
    }

    [Fact]
    public async Task Stream_WithUsage_IsReconciledToTheReportedUsage()
    {
        var completions = new CompletionSignal();
        await using var gateway = await StartAsync(RateLimitStores.Local, 1000, completions);
        using var http = gateway.CreateClient(AcmeKey);
        const string stream = """{"model":"gpt-test","messages":[{"role":"user","content":"Hello there"}],"max_tokens":50,"stream":true,"stream_options":{"include_usage":true}}""";

        using (var first = await SendAsync(http, stream))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            Assert.Equal("940", first.Header("x-ratelimit-remaining-tokens"));
            Assert.Contains("data: [DONE]", await first.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        await completions.NextAsync();

        using var second = await SendAsync(http);
        Assert.Equal((1000 - HelloUsage - HelloReservation).ToString(System.Globalization.CultureInfo.InvariantCulture), second.Header("x-ratelimit-remaining-tokens"));
    }

    [Fact]
    public async Task RequestThatCanNeverFit_Is400NotARetryable429()
    {
        await using var gateway = await StartAsync(RateLimitStores.Local, 200, new CompletionSignal());
        using var http = gateway.CreateClient(AcmeKey);

        using var response = await SendAsync(http, """{"model":"gpt-test","messages":[{"role":"user","content":"Hello there"}],"max_completion_tokens":500}""");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Empty(response.Header("Retry-After"));
        var error = await response.ErrorAsync();
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal("tokens_exceed_limit", error.GetProperty("code").GetString());
        Assert.Equal("This request needs about 510 tokens (10 estimated for the prompt + 500 for the completion), more than the limit of 200 tokens per minute for tenant 'acme', so it can never be served. Lower max_completion_tokens (or max_tokens) or shorten the prompt.",
            error.GetProperty("message").GetString());
        Assert.Equal("200", response.Header("x-ratelimit-remaining-tokens"));
        Assert.Equal(0, _simulator.Requests.Count);
    }

    [Fact]
    public async Task NoMaxTokens_ReservesTheConfiguredDefault()
    {
        var completions = new CompletionSignal();
        var settings = Settings(_simulator).Limit("Tenants:acme:TokensPerMinute", 1000).Limit("Tenants:acme:DefaultMaxTokens", 300);
        await using var gateway = await GatewayHost.StartAsync(settings, services =>
        {
            services.AddLlmProxyRateLimiting();
            services.AddSingleton<Pipeline.IChatRequestCompletionListener>(completions);
        });
        using var http = gateway.CreateClient(AcmeKey);

        using var response = await SendAsync(http, """{"model":"gpt-test","messages":[{"role":"user","content":"Hello there"}]}""");

        Assert.Equal("690", response.Header("x-ratelimit-remaining-tokens")); // 1000 - (10 + 300)
    }
}
