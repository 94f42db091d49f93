using LlmProxy.RateLimiting;
using static LlmProxy.Tests.RateLimiting.RateLimitTestData;

namespace LlmProxy.Tests.RateLimiting;

public sealed class LocalRateLimitStoreTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 3, 31, 23, 59, 0, TimeSpan.Zero));
    private readonly LocalRateLimitStore _store;

    public LocalRateLimitStoreTests() => _store = new LocalRateLimitStore(_time);

    [Fact]
    public async Task Acquire_RequestsPerMinute_AdmitsExactlyTheLimitThenRefusesUntilTheOldestLeaves()
    {
        var scope = Tenant(rpm: 3);
        for (var i = 0; i < 3; i++)
        {
            Assert.True((await _store.AcquireAsync(Request(_time, 0, scope))).Admitted);
            _time.Advance(TimeSpan.FromSeconds(10));
        }

        var refused = await _store.AcquireAsync(Request(_time, 0, scope));
        Assert.False(refused.Admitted);
        Assert.Equal(new RateLimitRejection(0, RateLimitKind.Requests, TimeSpan.FromSeconds(30)), refused.Rejection);
        Assert.Equal(3, refused.Usage[0].Requests);

        _time.Advance(TimeSpan.FromSeconds(30));
        var admitted = await _store.AcquireAsync(Request(_time, 0, scope));
        Assert.True(admitted.Admitted);
        Assert.Equal(3, admitted.Usage[0].Requests);
        Assert.Equal(TimeSpan.FromSeconds(60), admitted.Usage[0].RequestsReset);
    }

    [Fact]
    public async Task Acquire_RefusedRequest_ConsumesNothingInAnyScope()
    {
        var tenant = Tenant(rpm: 10, tpm: 1000);
        var key = Key("ci", rpm: 1);
        Assert.True((await _store.AcquireAsync(Request(_time, 100, tenant, key))).Admitted);

        var refused = await _store.AcquireAsync(Request(_time, 100, tenant, key));

        Assert.Equal(1, refused.Rejection!.ScopeIndex);
        Assert.Equal(RateLimitKind.Requests, refused.Rejection.Kind);
        Assert.Equal(1, refused.Usage[0].Requests);
        Assert.Equal(100, refused.Usage[0].Tokens);
    }

    [Fact]
    public async Task Acquire_SeveralLimitsExceeded_ReportsTheLongestWait()
    {
        var tenant = Tenant(rpm: 1, tpm: 100);
        Assert.True((await _store.AcquireAsync(Request(_time, 30, tenant))).Admitted);
        _time.Advance(TimeSpan.FromSeconds(20));
        Assert.True((await _store.AcquireAsync(Request(_time, 60, Tenant(tpm: 100)))).Admitted); // tokens only

        // A request frees at t=60 (40 s from now); 60 more tokens need both token entries gone: t=80 (60 s from now).
        var refused = await _store.AcquireAsync(Request(_time, 60, tenant));

        Assert.Equal(RateLimitKind.Tokens, refused.Rejection!.Kind);
        Assert.Equal(TimeSpan.FromSeconds(60), refused.Rejection.RetryAfter);
    }

    [Fact]
    public async Task Acquire_TokensAboveTheLimit_NeverFits()
    {
        var refused = await _store.AcquireAsync(Request(_time, 1001, Tenant(rpm: 1), Key("ci", tpm: 1000)));

        Assert.Equal(new RateLimitRejection(1, RateLimitKind.Tokens, null), refused.Rejection);
        Assert.True(refused.Rejection!.NeverFits);
    }

    [Fact]
    public async Task Complete_ActualBelowReservation_ReturnsTheDifference()
    {
        var scope = Tenant(tpm: 1000);
        var first = await _store.AcquireAsync(Request(_time, 600, scope));
        Assert.Equal(600, first.Usage[0].Tokens);

        await _store.CompleteAsync(first.Request, 100);
        var second = await _store.AcquireAsync(Request(_time, 600, scope));

        Assert.True(second.Admitted);
        Assert.Equal(700, second.Usage[0].Tokens);
    }

    [Fact]
    public async Task Complete_ActualAboveReservation_ChargesTheDifference()
    {
        var scope = Tenant(tpm: 1000);
        var first = await _store.AcquireAsync(Request(_time, 100, scope));

        await _store.CompleteAsync(first.Request, 950);
        var second = await _store.AcquireAsync(Request(_time, 100, scope));

        Assert.False(second.Admitted);
        Assert.Equal(950, second.Usage[0].Tokens);
    }

    [Fact]
    public async Task Complete_NoUsage_KeepsTheReservation()
    {
        var scope = Tenant(tpm: 1000);
        var first = await _store.AcquireAsync(Request(_time, 300, scope));

        await _store.CompleteAsync(first.Request, null);

        Assert.Equal(600, (await _store.AcquireAsync(Request(_time, 300, scope))).Usage[0].Tokens);
    }

    [Fact]
    public async Task Complete_ReservationAlreadyOutOfTheWindow_ChargesTheShortfallNow()
    {
        var scope = Tenant(tpm: 1000);
        var first = await _store.AcquireAsync(Request(_time, 100, scope));
        _time.Advance(TimeSpan.FromMinutes(2));

        await _store.CompleteAsync(first.Request, 400);

        Assert.Equal(300 + 10, (await _store.AcquireAsync(Request(_time, 10, scope))).Usage[0].Tokens);
    }

    [Fact]
    public async Task Acquire_Concurrency_RefusesWhileFullAndAdmitsAfterRelease()
    {
        var scope = Tenant(concurrency: 2);
        var a = await _store.AcquireAsync(Request(_time, 0, scope));
        var b = await _store.AcquireAsync(Request(_time, 0, scope));

        var refused = await _store.AcquireAsync(Request(_time, 0, scope));
        Assert.Equal(new RateLimitRejection(0, RateLimitKind.Concurrency, TimeSpan.FromSeconds(1)), refused.Rejection);
        Assert.Equal(2, refused.Usage[0].InFlight);

        await _store.CompleteAsync(a.Request, null);
        await _store.CompleteAsync(a.Request, null); // idempotent
        Assert.True((await _store.AcquireAsync(Request(_time, 0, scope))).Admitted);
        Assert.False((await _store.AcquireAsync(Request(_time, 0, scope))).Admitted);
        Assert.True(b.Admitted);
    }

    [Fact]
    public async Task Acquire_DailyBudgetSpent_RefusesUntilUtcMidnight()
    {
        var scope = Tenant(daily: 1.00m);
        var periods = BudgetPeriods.At(_time.GetUtcNow());
        await _store.RecordSpendAsync(TenantName, [scope], 0.60m, periods);
        Assert.True((await _store.AcquireAsync(Request(_time, 0, scope))).Admitted);

        var totals = await _store.RecordSpendAsync(TenantName, [scope], 0.40m, periods);
        Assert.Equal(new BudgetSpend(1.00m, 1.00m), totals[0]);
        var refused = await _store.AcquireAsync(Request(_time, 0, scope));
        Assert.Equal(new RateLimitRejection(0, RateLimitKind.DailyBudget, TimeSpan.FromMinutes(1)), refused.Rejection);

        _time.Advance(TimeSpan.FromMinutes(1)); // 2026-04-01T00:00Z
        var nextDay = await _store.AcquireAsync(Request(_time, 0, scope));
        Assert.True(nextDay.Admitted);
        Assert.Equal(new BudgetSpend(0, 0), nextDay.Usage[0].Spend);
    }

    [Fact]
    public async Task Acquire_MonthlyBudgetSpent_RefusesUntilTheFirstOfTheMonth()
    {
        var scope = Tenant(daily: 10m, monthly: 2m);
        await _store.RecordSpendAsync(TenantName, [scope], 2.5m, BudgetPeriods.At(_time.GetUtcNow()));

        var refused = await _store.AcquireAsync(Request(_time, 0, scope));

        Assert.Equal(RateLimitKind.MonthlyBudget, refused.Rejection!.Kind);
        Assert.Equal(TimeSpan.FromMinutes(1), refused.Rejection.RetryAfter);
        _time.Advance(TimeSpan.FromMinutes(1));
        Assert.True((await _store.AcquireAsync(Request(_time, 0, scope))).Admitted);
    }

    [Fact]
    public async Task Acquire_ZeroBudget_RefusesEverything()
    {
        var refused = await _store.AcquireAsync(Request(_time, 0, Tenant(daily: 0m)));

        Assert.Equal(RateLimitKind.DailyBudget, refused.Rejection!.Kind);
    }

    [Fact]
    public async Task Acquire_TenantsAndScopes_HaveSeparateCounters()
    {
        var tenant = Tenant(rpm: 100);
        Assert.True((await _store.AcquireAsync(Request(_time, 0, tenant, Model("gpt-4o", rpm: 1)))).Admitted);

        Assert.False((await _store.AcquireAsync(Request(_time, 0, tenant, Model("gpt-4o", rpm: 1)))).Admitted);
        Assert.True((await _store.AcquireAsync(Request(_time, 0, tenant, Model("gpt-4o-mini", rpm: 1)))).Admitted);
        var other = new RateLimitRequest("globex", "x", [Model("gpt-4o", rpm: 1)], 0, BudgetPeriods.At(_time.GetUtcNow()));
        Assert.True((await _store.AcquireAsync(other)).Admitted);
    }

    [Fact]
    public async Task Acquire_ParallelRequests_AdmitsExactlyTheLimit()
    {
        var scope = Tenant(rpm: 50);

        var decisions = await Task.WhenAll(Enumerable.Range(0, 200).Select(_ => Task.Run(async () => await _store.AcquireAsync(Request(_time, 0, scope)))));

        Assert.Equal(50, decisions.Count(d => d.Admitted));
    }
}
