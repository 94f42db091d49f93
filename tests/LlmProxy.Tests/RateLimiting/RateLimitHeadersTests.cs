using LlmProxy.RateLimiting;
using static LlmProxy.Tests.RateLimiting.RateLimitTestData;

namespace LlmProxy.Tests.RateLimiting;

public sealed class RateLimitHeadersTests
{
    [Theory]
    [InlineData(0, "0s")]
    [InlineData(0.4, "1ms")]
    [InlineData(120, "120ms")]
    [InlineData(999, "999ms")]
    [InlineData(1000, "1s")]
    [InlineData(1500, "1.5s")]
    [InlineData(17_250, "17.25s")]
    [InlineData(60_000, "1m0s")]
    [InlineData(360_000, "6m0s")]
    [InlineData(90_500, "1m30.5s")]
    [InlineData(3_723_004, "1h2m3.004s")]
    [InlineData(86_400_000, "24h0m0s")]
    public void Format_Durations_AsOpenAiWritesThem(double milliseconds, string expected)
    {
        Assert.Equal(expected, OpenAiDuration.Format(TimeSpan.FromMilliseconds(milliseconds)));
    }

    [Fact]
    public void For_SeveralScopes_ReportsTheTightestOfEachKind()
    {
        var time = new FakeTimeProvider();
        var request = Request(time, 10, Tenant(rpm: 100, tpm: 1000), Key("ci", rpm: 10), Model("gpt-4o", tpm: 5000));
        var decision = RateLimitDecision.Reject(request, new RateLimitRejection(1, RateLimitKind.Requests, TimeSpan.FromSeconds(2)),
        [
            new ScopeUsage(50, TimeSpan.FromSeconds(30), 900, TimeSpan.FromSeconds(40), 0, default),
            new ScopeUsage(10, TimeSpan.FromSeconds(2), 0, TimeSpan.Zero, 0, default),
            new ScopeUsage(0, TimeSpan.Zero, 4950, TimeSpan.FromMilliseconds(120), 0, default),
        ]);

        var headers = RateLimitHeaders.For(decision).ToDictionary();

        Assert.Equal("10", headers["x-ratelimit-limit-requests"]);
        Assert.Equal("0", headers["x-ratelimit-remaining-requests"]);
        Assert.Equal("2s", headers["x-ratelimit-reset-requests"]);
        Assert.Equal("5000", headers["x-ratelimit-limit-tokens"]);
        Assert.Equal("50", headers["x-ratelimit-remaining-tokens"]);
        Assert.Equal("120ms", headers["x-ratelimit-reset-tokens"]);
    }

    [Fact]
    public void For_EqualRemaining_PrefersTheSmallerLimit()
    {
        var request = Request(new FakeTimeProvider(), 0, Tenant(rpm: 100), Key("ci", rpm: 10));
        var decision = RateLimitDecision.Reject(request, new RateLimitRejection(0, RateLimitKind.Requests, TimeSpan.FromSeconds(1)),
            [new ScopeUsage(100, TimeSpan.FromSeconds(5), 0, default, 0, default), new ScopeUsage(10, TimeSpan.FromSeconds(9), 0, default, 0, default)]);

        var headers = RateLimitHeaders.For(decision).ToDictionary();

        Assert.Equal("10", headers["x-ratelimit-limit-requests"]);
        Assert.Equal("9s", headers["x-ratelimit-reset-requests"]);
    }

    [Fact]
    public void For_NoRequestOrTokenLimit_NoHeaders()
    {
        var request = Request(new FakeTimeProvider(), 0, Tenant(concurrency: 2, daily: 1m));
        var decision = RateLimitDecision.Reject(request, new RateLimitRejection(0, RateLimitKind.Concurrency, TimeSpan.FromSeconds(1)), [default]);

        Assert.Empty(RateLimitHeaders.For(decision));
    }

    [Fact]
    public void For_StoreUnavailable_NoHeaders()
    {
        var request = Request(new FakeTimeProvider(), 0, Tenant(rpm: 10));
        var decision = RateLimitDecision.Reject(request, new RateLimitRejection(-1, RateLimitKind.StoreUnavailable, TimeSpan.FromSeconds(5)), [default]);

        Assert.Empty(RateLimitHeaders.For(decision));
    }
}
