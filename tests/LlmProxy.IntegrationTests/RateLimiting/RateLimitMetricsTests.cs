using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Pipeline;
using LlmProxy.RateLimiting;
using LlmProxy.Simulator;
using Microsoft.Extensions.DependencyInjection.Extensions;
using static LlmProxy.IntegrationTests.RateLimiting.RateLimitTesting;

namespace LlmProxy.IntegrationTests.RateLimiting;

/// <summary>The limiter's instruments as the gateway's /metrics endpoint exposes them.</summary>
public sealed partial class RateLimitMetricsTests
{
    [Fact]
    public async Task Scrape_RejectionsByLimitAndRemainingBudget_AreExposed()
    {
        await using var simulator = await SimulatorServer.StartAsync(new SimulatorOptions());
        var completions = new CompletionSignal();
        var settings = Settings(simulator)
            .Limit("Tenants:acme:RequestsPerMinute", 1)
            .Limit("Tenants:acme:DailyBudgetUsd", "1.00")
            .Limit("Tenants:acme:MonthlyBudgetUsd", "10");
        await using var gateway = await GatewayHost.StartAsync(settings, services =>
        {
            services.AddLlmProxyRateLimiting();
            services.Replace(ServiceDescriptor.Singleton<IRequestCostSource>(new FixedCostSource(0.25m)));
            services.AddSingleton<IChatRequestCompletionListener>(completions);
        });
        using var http = gateway.CreateClient(AcmeKey);

        using (var ok = await SendAsync(http))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
        await completions.NextAsync();
        for (var i = 0; i < 2; i++)
        {
            using var refused = await SendAsync(http);
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        }
        using var scrapeClient = gateway.CreateClient();
        var text = await scrapeClient.GetStringAsync("/metrics");

        Assert.Equal(2, Value(text, "llmproxy_ratelimit_rejections_total", ("limit", "requests"), ("tenant", "acme")));
        Assert.Equal(0.75, Value(text, "llmproxy_ratelimit_budget_remaining_usd", ("period", "daily"), ("tenant", "acme")), 6);
        Assert.Equal(9.75, Value(text, "llmproxy_ratelimit_budget_remaining_usd", ("period", "monthly"), ("tenant", "acme")), 6);
    }

    private static double Value(string exposition, string metric, params (string Name, string Value)[] labels)
    {
        var samples = SampleLine().Matches(exposition)
            .Where(m => m.Groups["name"].Value == metric && labels.All(l => m.Groups["labels"].Value.Contains($"{l.Name}=\"{l.Value}\"", StringComparison.Ordinal)))
            .ToArray();
        Assert.True(samples.Length > 0, $"no sample of {metric} with {string.Join(",", labels)} in:\n{exposition}");
        return samples.Sum(m => double.Parse(m.Groups["value"].Value, CultureInfo.InvariantCulture));
    }

    [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>[^}]*)\})? (?<value>\S+)$", RegexOptions.Multiline)]
    private static partial Regex SampleLine();
}
