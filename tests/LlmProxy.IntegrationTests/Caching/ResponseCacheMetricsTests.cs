using System.Text.RegularExpressions;

namespace LlmProxy.IntegrationTests.Caching;

/// <summary>The cache's metrics as a Prometheus scrape of the gateway shows them.</summary>
public sealed partial class ResponseCacheMetricsTests
{
    [Fact]
    public async Task Scrape_AfterMissHitsAndBypass_CountsEachResultPerTenantAndModel()
    {
        await using var env = await CacheTestGateway.StartAsync();
        await env.SendAsync("acme", CacheTestGateway.Body());
        await env.SendAsync("acme", CacheTestGateway.Body());
        await env.SendAsync("acme", CacheTestGateway.Body(stream: true));
        await env.SendAsync("acme", CacheTestGateway.Body(), ("Cache-Control", "no-cache"));
        await env.SendAsync("globex", CacheTestGateway.Body());

        using var client = env.Gateway.CreateClient();
        var text = await client.GetStringAsync("metrics", TestContext.Current.CancellationToken);

        Assert.Equal(1, Value(text, "llmproxy_cache_requests_total", "model=\"gpt-test\",result=\"miss\",tenant=\"acme\""));
        Assert.Equal(2, Value(text, "llmproxy_cache_requests_total", "model=\"gpt-test\",result=\"hit\",tenant=\"acme\""));
        Assert.Equal(1, Value(text, "llmproxy_cache_requests_total", "model=\"gpt-test\",result=\"bypass\",tenant=\"acme\""));
        Assert.Equal(1, Value(text, "llmproxy_cache_requests_total", "model=\"gpt-test\",result=\"miss\",tenant=\"globex\""));
        Assert.True(Value(text, "llmproxy_cache_store_duration_seconds_count", "operation=\"get\",store=\"memory\"") >= 4);
        Assert.DoesNotContain(env.Gateway.Logs.Lines, l => l.Contains("is not exposed", StringComparison.Ordinal));
    }

    private static double Value(string scrape, string metric, string labels)
    {
        var match = Regex.Match(scrape, "^" + Regex.Escape(metric + "{" + labels + "}") + @" (\S+)$", RegexOptions.Multiline);
        Assert.True(match.Success, $"{metric}{{{labels}}} not in the scrape:\n{scrape}");
        return double.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }
}
