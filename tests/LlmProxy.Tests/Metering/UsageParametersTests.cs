using LlmProxy.Metering;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace LlmProxy.Tests.Metering;

public sealed class UsageParametersTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 20, 15, 30, 0, TimeSpan.Zero);
    private static readonly TimeSpan MaxRange = TimeSpan.FromDays(400);

    private static IQueryCollection Query(string query) => new QueryCollection(Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(query));

    private static UsageParameters Parse(string query, bool admin = false)
    {
        Assert.True(UsageParameters.TryParse(Query(query), Now, MaxRange, admin, out var parameters, out var error), error?.Error.Message);
        return parameters!;
    }

    private static LlmProxy.OpenAi.GatewayError Fail(string query, bool admin = false)
    {
        Assert.False(UsageParameters.TryParse(Query(query), Now, MaxRange, admin, out _, out var error));
        Assert.Equal(400, error!.StatusCode);
        Assert.Equal("invalid_request_error", error.Error.Type);
        return error;
    }

    [Fact]
    public void TryParse_NoParameters_LastThirtyDays()
    {
        var p = Parse("");
        Assert.Equal(Now, p.To);
        Assert.Equal(Now.AddDays(-30), p.From);
        Assert.Null(p.GroupBy);
    }

    [Fact]
    public void TryParse_Dates_MidnightUtc()
    {
        var p = Parse("?from=2026-11-01&to=2026-11-08&group_by=MODEL&model=gpt-4o&agent=bot");
        Assert.Equal(new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero), p.From);
        Assert.Equal(new DateTimeOffset(2026, 11, 8, 0, 0, 0, TimeSpan.Zero), p.To);
        Assert.Equal("model", p.GroupBy);
        Assert.Equal("gpt-4o", p.Model);
        Assert.Equal("bot", p.Agent);
    }

    [Fact]
    public void TryParse_DateTimesWithOffsetAndUnixSeconds()
    {
        var p = Parse("?from=2026-11-01T10:00:00%2B02:00&to=1795000000");
        Assert.Equal(new DateTimeOffset(2026, 11, 1, 8, 0, 0, TimeSpan.Zero), p.From);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1795000000), p.To);
    }

    [Fact]
    public void TryParse_OnlyFrom_ThirtyDaysFromItOrNow()
    {
        Assert.Equal(new DateTimeOffset(2026, 1, 31, 0, 0, 0, TimeSpan.Zero), Parse("?from=2026-01-01").To);
        Assert.Equal(Now, Parse("?from=2026-11-10").To);
    }

    [Theory]
    [InlineData("?from=yesterday", "from")]
    [InlineData("?to=2026-13-01", "to")]
    [InlineData("?from=2026/11/01", "from")]
    public void TryParse_BadDate_400NamingTheParameter(string query, string param)
    {
        var error = Fail(query);
        Assert.Equal(param, error.Error.Param);
        Assert.Equal("invalid_value", error.Error.Code);
    }

    [Fact]
    public void TryParse_FromAfterTo_400()
    {
        var error = Fail("?from=2026-11-08&to=2026-11-01");
        Assert.Equal("from", error.Error.Param);
        Assert.Contains("before", error.Error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TryParse_FromEqualsTo_400()
    {
        Fail("?from=2026-11-08&to=2026-11-08");
    }

    [Fact]
    public void TryParse_UnknownGroupBy_400ListingTheChoices()
    {
        var error = Fail("?group_by=color");
        Assert.Equal("group_by", error.Error.Param);
        Assert.Contains("model, provider, deployment, agent, key, day", error.Error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TryParse_GroupByTenant_OnlyForAdmins()
    {
        Fail("?group_by=tenant");
        Assert.Equal("tenant", Parse("?group_by=tenant", admin: true).GroupBy);
    }

    [Fact]
    public void TryParse_TenantParameter_OnlyForAdmins()
    {
        Assert.Equal("tenant", Fail("?tenant=other").Error.Param);
        Assert.Equal("other", Parse("?tenant=other", admin: true).Tenant);
    }

    [Fact]
    public void TryParse_RangeTooLong_400()
    {
        Assert.Equal("to", Fail("?from=2024-01-01&to=2026-01-01").Error.Param);
    }

    [Fact]
    public void TryParse_ParameterTwice_400()
    {
        Assert.Equal("model", Fail("?model=a&model=b").Error.Param);
    }
}

public sealed class UsageAccumulatorTests
{
    [Fact]
    public void ToSummary_MixedOutcomes_CountsRatesAndAverages()
    {
        var accumulator = new UsageAccumulator();
        accumulator.Add(MeteringTestData.Record(0, cost: 0.01m, prompt: 100, completion: 50) with { LatencyMs = 100 });
        accumulator.Add(MeteringTestData.Record(1, cost: 0m, prompt: 0, completion: 0) with { CacheHit = true, LatencyMs = 2 });
        accumulator.Add(MeteringTestData.Record(2, cost: 0m, prompt: 0, completion: 0) with { Status = 502, ErrorType = "upstream_error", LatencyMs = 30 });
        accumulator.Add(MeteringTestData.Record(3, cost: 0.005m, prompt: 40, completion: 10) with { ClientDisconnected = true, TokensEstimated = true, LatencyMs = 40 });
        accumulator.Add(MeteringTestData.Record(4, cost: null, prompt: 10, completion: 10) with { LatencyMs = 28 });

        var s = accumulator.ToSummary();

        Assert.Equal(5, s.Requests);
        Assert.Equal(3, s.Succeeded);
        Assert.Equal(1, s.Failed);
        Assert.Equal(1, s.ClientDisconnected);
        Assert.Equal(1, s.CacheHits);
        Assert.Equal(0.6, s.SuccessRate);
        Assert.Equal(0.2, s.CacheHitRate);
        Assert.Equal(150, s.PromptTokens);
        Assert.Equal(70, s.CompletionTokens);
        Assert.Equal(220, s.TotalTokens);
        Assert.Equal(1, s.EstimatedRequests);
        Assert.Equal(1, s.UnpricedRequests);
        Assert.Equal(0.015m, s.CostUsd);
        Assert.Equal(40, s.AverageLatencyMs);
        Assert.Equal(44, s.AverageTokensPerRequest);
        Assert.Equal(0.003m, s.AverageCostUsdPerRequest);
    }

    [Fact]
    public void ToSummary_Empty_ZerosNotNaN()
    {
        var s = new UsageAccumulator().ToSummary();
        Assert.Equal(0, s.Requests);
        Assert.Equal(0, s.SuccessRate);
        Assert.Equal(0, s.AverageLatencyMs);
        Assert.Equal(0m, s.AverageCostUsdPerRequest);
    }

    [Fact]
    public void GroupOf_CacheHit_ProviderAndDeploymentAreCache()
    {
        var hit = MeteringTestData.Record(0) with { CacheHit = true, Provider = null, Deployment = null };
        Assert.Equal("cache", UsageGroupings.GroupOf(hit, "provider"));
        Assert.Equal("cache", UsageGroupings.GroupOf(hit, "deployment"));
        Assert.Equal("none", UsageGroupings.GroupOf(hit with { CacheHit = false }, "provider"));
    }

    [Theory]
    [InlineData("model", "gpt-4o")]
    [InlineData("provider", "openai")]
    [InlineData("deployment", "d1")]
    [InlineData("agent", "none")]
    [InlineData("key", "k1")]
    [InlineData("day", "2026-11-20")]
    [InlineData("tenant", "acme")]
    public void GroupOf_EachDimension(string groupBy, string expected)
    {
        Assert.Equal(expected, UsageGroupings.GroupOf(MeteringTestData.Record(0), groupBy));
    }
}
