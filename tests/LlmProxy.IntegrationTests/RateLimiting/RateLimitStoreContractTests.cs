using LlmProxy.RateLimiting;
using Microsoft.Extensions.Logging.Abstractions;

namespace LlmProxy.IntegrationTests.RateLimiting;

/// <summary>
/// The semantics every store must have, run against the in-process store and against the Lua scripts on a real
/// redis-server (with the gateway clock, driven by a fake clock): exact sliding windows, all-or-nothing across scopes,
/// the refusal reported, reconciliation, concurrency and budget periods.
/// </summary>
public abstract class RateLimitStoreContractTests : IAsyncLifetime
{
    protected const string TenantName = "acme";

    private protected FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 3, 31, 23, 58, 0, TimeSpan.Zero));

    private protected IRateLimitStore Store { get; private set; } = null!;

    private protected abstract IRateLimitStore CreateStore();

    public ValueTask InitializeAsync()
    {
        Store = CreateStore();
        return ValueTask.CompletedTask;
    }

    public virtual async ValueTask DisposeAsync()
    {
        if (Store is IAsyncDisposable disposable)
        {
            await disposable.DisposeAsync();
        }
    }

    private protected static RateLimitScope Tenant(int? rpm = null, int? tpm = null, int? concurrency = null, decimal? daily = null, decimal? monthly = null) =>
        new(RateLimitScope.TenantKey, RateLimitLevel.Tenant, TenantName, new ScopeLimits(rpm, tpm, concurrency, daily, monthly));

    private protected static RateLimitScope Key(string name, int? rpm = null, int? tpm = null, int? concurrency = null) =>
        new(RateLimitScope.KeyFor(RateLimitLevel.Key, name), RateLimitLevel.Key, name, new ScopeLimits(rpm, tpm, concurrency, null, null));

    private protected RateLimitRequest Request(long tokens, params RateLimitScope[] scopes) =>
        new(TenantName, Guid.NewGuid().ToString("N"), scopes, tokens, BudgetPeriods.At(Time.GetUtcNow()));

    private protected Task<RateLimitDecision> AcquireAsync(long tokens, params RateLimitScope[] scopes) => Store.AcquireAsync(Request(tokens, scopes)).AsTask();

    [Fact]
    public async Task Acquire_RequestsPerMinute_AdmitsExactlyTheLimitThenRetryAfterIsExact()
    {
        var scope = Tenant(rpm: 3);
        for (var i = 0; i < 3; i++)
        {
            var admitted = await AcquireAsync(0, scope);
            Assert.True(admitted.Admitted);
            Assert.Equal(i + 1, admitted.Usage[0].Requests);
            Time.Advance(TimeSpan.FromSeconds(10));
        }

        var refused = await AcquireAsync(0, scope);

        Assert.Equal(new RateLimitRejection(0, RateLimitKind.Requests, TimeSpan.FromSeconds(30)), refused.Rejection);
        Assert.Equal(3, refused.Usage[0].Requests);
        Assert.Equal(TimeSpan.FromSeconds(50), refused.Usage[0].RequestsReset);
        Time.Advance(TimeSpan.FromMilliseconds(29_999));
        Assert.False((await AcquireAsync(0, scope)).Admitted);
        Time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True((await AcquireAsync(0, scope)).Admitted);
    }

    [Fact]
    public async Task Acquire_SlidingWindow_FreesOnlyWhatLeftTheWindow()
    {
        var scope = Tenant(rpm: 60);
        for (var i = 0; i < 30; i++)
        {
            Assert.True((await AcquireAsync(0, scope)).Admitted);
        }
        Time.Advance(TimeSpan.FromSeconds(30));
        for (var i = 0; i < 30; i++)
        {
            Assert.True((await AcquireAsync(0, scope)).Admitted);
        }
        Assert.False((await AcquireAsync(0, scope)).Admitted);

        Time.Advance(TimeSpan.FromSeconds(30));
        var admitted = 0;
        while ((await AcquireAsync(0, scope)).Admitted)
        {
            admitted++;
        }

        Assert.Equal(30, admitted);
    }

    [Fact]
    public async Task Acquire_RefusedInOneScope_ConsumesNothingInAnyScope()
    {
        var tenant = Tenant(rpm: 10, tpm: 1000, concurrency: 5);
        var key = Key("ci", rpm: 1);
        Assert.True((await AcquireAsync(100, tenant, key)).Admitted);

        var refused = await AcquireAsync(100, tenant, key);

        Assert.Equal(1, refused.Rejection!.ScopeIndex);
        Assert.Equal(RateLimitKind.Requests, refused.Rejection.Kind);
        Assert.Equal((1, 100, 1), (refused.Usage[0].Requests, refused.Usage[0].Tokens, refused.Usage[0].InFlight));
    }

    [Fact]
    public async Task Acquire_SeveralLimitsExceeded_ReportsTheLongestWait()
    {
        var tenant = Tenant(rpm: 1, tpm: 100);
        Assert.True((await AcquireAsync(30, tenant)).Admitted);
        Time.Advance(TimeSpan.FromSeconds(20));
        Assert.True((await AcquireAsync(60, Tenant(tpm: 100))).Admitted);

        var refused = await AcquireAsync(60, tenant);

        Assert.Equal(new RateLimitRejection(0, RateLimitKind.Tokens, TimeSpan.FromSeconds(60)), refused.Rejection);
    }

    [Fact]
    public async Task Acquire_MoreTokensThanTheLimit_NeverFitsEvenWhenAnotherLimitAlsoRefuses()
    {
        Assert.True((await AcquireAsync(0, Tenant(rpm: 1))).Admitted);

        var refused = await AcquireAsync(1001, Tenant(rpm: 1), Key("ci", tpm: 1000));

        Assert.Equal(new RateLimitRejection(1, RateLimitKind.Tokens, null), refused.Rejection);
    }

    [Fact]
    public async Task Complete_ReconcilesTheReservationDownAndUp()
    {
        var scope = Tenant(tpm: 1000);
        var first = await AcquireAsync(600, scope);
        Assert.Equal(600, first.Usage[0].Tokens);

        await Store.CompleteAsync(first.Request, 100);
        var second = await AcquireAsync(600, scope);
        Assert.Equal(700, second.Usage[0].Tokens);

        await Store.CompleteAsync(second.Request, 850);
        var third = await AcquireAsync(60, scope);
        Assert.Equal(RateLimitKind.Tokens, third.Rejection!.Kind);
        Assert.Equal(950, third.Usage[0].Tokens);
    }

    [Fact]
    public async Task Complete_WithoutUsage_KeepsTheReservation()
    {
        var scope = Tenant(tpm: 1000);
        await Store.CompleteAsync((await AcquireAsync(300, scope)).Request, null);

        Assert.Equal(600, (await AcquireAsync(300, scope)).Usage[0].Tokens);
    }

    [Fact]
    public async Task Complete_ReservationAlreadyOutOfTheWindow_ChargesTheShortfallNow()
    {
        var scope = Tenant(tpm: 1000);
        var first = await AcquireAsync(100, scope);
        Time.Advance(TimeSpan.FromSeconds(90));

        await Store.CompleteAsync(first.Request, 400);

        Assert.Equal(300 + 10, (await AcquireAsync(10, scope)).Usage[0].Tokens);
        Time.Advance(TimeSpan.FromSeconds(60));
        Assert.Equal(10, (await AcquireAsync(10, scope)).Usage[0].Tokens);
    }

    [Fact]
    public async Task Acquire_TokenReset_IsUntilTheNewestReservationLeaves()
    {
        var scope = Tenant(tpm: 1000);
        await AcquireAsync(100, scope);
        Time.Advance(TimeSpan.FromSeconds(15));

        var decision = await AcquireAsync(100, scope);

        Assert.Equal(TimeSpan.FromSeconds(60), decision.Usage[0].TokensReset);
        Assert.Equal(200, decision.Usage[0].Tokens);
    }

    [Fact]
    public async Task Acquire_Concurrency_RefusesWhileFullAndAdmitsAfterRelease()
    {
        var scope = Tenant(concurrency: 2);
        var a = await AcquireAsync(0, scope);
        Assert.True((await AcquireAsync(0, scope)).Admitted);

        var refused = await AcquireAsync(0, scope);
        Assert.Equal(new RateLimitRejection(0, RateLimitKind.Concurrency, TimeSpan.FromSeconds(1)), refused.Rejection);
        Assert.Equal(2, refused.Usage[0].InFlight);

        await Store.CompleteAsync(a.Request, null);
        Assert.True((await AcquireAsync(0, scope)).Admitted);
        Assert.False((await AcquireAsync(0, scope)).Admitted);
    }

    [Fact]
    public async Task Acquire_DailyBudget_RefusesUntilUtcMidnight()
    {
        var scope = Tenant(daily: 1.00m);
        var periods = BudgetPeriods.At(Time.GetUtcNow());
        Assert.Equal(0.6m, (await Store.RecordSpendAsync(TenantName, [scope], 0.60m, periods))[0].DailyUsd);
        Assert.True((await AcquireAsync(0, scope)).Admitted);

        var totals = await Store.RecordSpendAsync(TenantName, [scope], 0.400000001m, periods);
        Assert.Equal(new BudgetSpend(1.000000001m, 1.000000001m), totals[0]);
        var refused = await AcquireAsync(0, scope);
        Assert.Equal(new RateLimitRejection(0, RateLimitKind.DailyBudget, TimeSpan.FromMinutes(2)), refused.Rejection);
        Assert.Equal(1.000000001m, refused.Usage[0].Spend.DailyUsd);

        Time.Advance(TimeSpan.FromMinutes(2));
        var nextDay = await AcquireAsync(0, scope);
        Assert.True(nextDay.Admitted);
        Assert.Equal(default, nextDay.Usage[0].Spend);
    }

    [Fact]
    public async Task Acquire_MonthlyBudget_RefusesUntilTheFirstOfTheMonth()
    {
        var scope = Tenant(daily: 10m, monthly: 2m);
        await Store.RecordSpendAsync(TenantName, [scope], 1.5m, BudgetPeriods.At(Time.GetUtcNow().AddDays(-3)));
        await Store.RecordSpendAsync(TenantName, [scope], 0.5m, BudgetPeriods.At(Time.GetUtcNow()));

        var refused = await AcquireAsync(0, scope);

        Assert.Equal(new RateLimitRejection(0, RateLimitKind.MonthlyBudget, TimeSpan.FromMinutes(2)), refused.Rejection);
        Assert.Equal(new BudgetSpend(0.5m, 2m), refused.Usage[0].Spend);
        Time.Advance(TimeSpan.FromMinutes(2));
        Assert.True((await AcquireAsync(0, scope)).Admitted);
    }

    [Fact]
    public async Task Acquire_ManyAtOnce_AdmitsExactlyTheLimit()
    {
        var scope = Tenant(rpm: 50, tpm: 5000);

        var decisions = await Task.WhenAll(Enumerable.Range(0, 200).Select(_ => Task.Run(() => AcquireAsync(10, scope))));

        Assert.Equal(50, decisions.Count(d => d.Admitted));
        Assert.All(decisions.Where(d => !d.Admitted), d => Assert.Equal(RateLimitKind.Requests, d.Rejection!.Kind));
    }
}

public sealed class LocalRateLimitStoreContractTests : RateLimitStoreContractTests
{
    private protected override IRateLimitStore CreateStore() => new LocalRateLimitStore(Time);
}

/// <summary>The Lua scripts, on a real redis-server, with the gateway clock so that a fake clock drives the windows.</summary>
public sealed class RedisRateLimitStoreContractTests : RateLimitStoreContractTests
{
    private readonly string _prefix = RedisTestServer.NewKeyPrefix();

    private protected override IRateLimitStore CreateStore() => CreateRedisStore();

    private RedisRateLimitStore CreateRedisStore() => new(new RedisRateLimitOptions
    {
        Configuration = RedisTestServer.SharedConfiguration(),
        KeyPrefix = _prefix,
        Clock = RateLimitClocks.Gateway,
        OperationTimeout = TimeSpan.FromSeconds(10),
    }, Time, NullLogger.Instance);

    [Fact]
    public async Task Acquire_ReplicaDiedHoldingASlot_SlotFreesWhenItsLeaseRunsOut()
    {
        var scope = Tenant(concurrency: 1);
        await using (var dying = CreateRedisStore())
        {
            Assert.True((await dying.AcquireAsync(Request(0, scope))).Admitted);
        }

        Time.Advance(TimeSpan.FromSeconds(29));
        Assert.False((await AcquireAsync(0, scope)).Admitted);
        Time.Advance(TimeSpan.FromSeconds(1));
        Assert.True((await AcquireAsync(0, scope)).Admitted);
    }

    [Fact]
    public async Task Renew_LiveReplica_KeepsItsSlotsBeyondTheLease()
    {
        var scope = Tenant(concurrency: 1);
        var redis = (RedisRateLimitStore)Store;
        var held = await AcquireAsync(0, scope);

        for (var i = 0; i < 6; i++)
        {
            Time.Advance(TimeSpan.FromSeconds(10));
            await redis.RenewHeldSlotsAsync();
        }
        Assert.False((await AcquireAsync(0, scope)).Admitted);

        await Store.CompleteAsync(held.Request, null);
        Assert.True((await AcquireAsync(0, scope)).Admitted);
    }

    [Fact]
    public async Task Acquire_ServerClock_WindowsRunOnRedisTime()
    {
        await using var store = new RedisRateLimitStore(new RedisRateLimitOptions
        {
            Configuration = RedisTestServer.SharedConfiguration(),
            KeyPrefix = RedisTestServer.NewKeyPrefix(),
            Clock = RateLimitClocks.Server,
        }, Time, NullLogger.Instance);
        var scope = Tenant(rpm: 2);

        Assert.True((await store.AcquireAsync(Request(0, scope))).Admitted);
        Assert.True((await store.AcquireAsync(Request(0, scope))).Admitted);
        var refused = await store.AcquireAsync(Request(0, scope));

        // The fake gateway clock does not move; Redis time does, and the wait is measured on it.
        Assert.Equal(RateLimitKind.Requests, refused.Rejection!.Kind);
        Assert.InRange(refused.Rejection.RetryAfter!.Value, TimeSpan.FromSeconds(50), TimeSpan.FromSeconds(60));
        Assert.InRange(refused.Usage[0].RequestsReset, TimeSpan.FromSeconds(50), TimeSpan.FromSeconds(60));
    }
}
