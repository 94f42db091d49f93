using LlmProxy.RateLimiting;
using Microsoft.Extensions.Logging.Abstractions;
using static LlmProxy.Tests.RateLimiting.RateLimitTestData;

namespace LlmProxy.Tests.RateLimiting;

public sealed class FailoverRateLimitStoreTests
{
    private readonly FakeTimeProvider _time = new();
    private readonly FlakyStore _primary;

    public FailoverRateLimitStoreTests() => _primary = new FlakyStore(new LocalRateLimitStore(_time));

    private FailoverRateLimitStore Create(string mode = RateLimitFailureModes.Local, int replicas = 2) => new(
        _primary, new LocalRateLimitStore(_time),
        new RedisRateLimitOptions { Configuration = "unused", FailureMode = mode, ReplicaCount = replicas, RetryInterval = TimeSpan.FromSeconds(5) },
        _time, metrics: null, NullLogger.Instance);

    [Fact]
    public async Task Acquire_PrimaryWorks_DecidesThere()
    {
        var store = Create();

        var decision = await store.AcquireAsync(Request(_time, 0, Tenant(rpm: 10)));

        Assert.True(decision.Admitted);
        Assert.Same(store, decision.AdmittedBy);
        Assert.Equal(1, _primary.Calls);
        Assert.False(store.IsDegraded);
    }

    [Fact]
    public async Task Acquire_PrimaryDown_LocalMode_FallsBackWithEachReplicasShare()
    {
        var store = Create(replicas: 3);
        _primary.Failing = true;
        var scope = Tenant(rpm: 10, concurrency: 7);

        var decisions = new List<RateLimitDecision>();
        for (var i = 0; i < 5; i++)
        {
            decisions.Add(await store.AcquireAsync(Request(_time, 0, scope)));
        }

        // 10 / 3 = 3 requests, 7 / 3 = 2 in flight: this replica's share, rounded down.
        Assert.Equal([true, true, false, false, false], decisions.Select(d => d.Admitted));
        Assert.Equal(RateLimitKind.Concurrency, decisions[2].Rejection!.Kind);
        Assert.Equal(3, decisions[0].Request.Scopes[0].Limits.RequestsPerMinute);
        Assert.True(store.IsDegraded);
    }

    [Fact]
    public async Task Acquire_PrimaryDown_IsNotTriedAgainUntilTheRetryInterval_ThenOneProbe()
    {
        var store = Create();
        _primary.Failing = true;
        var scope = Tenant(rpm: 100);

        for (var i = 0; i < 10; i++)
        {
            await store.AcquireAsync(Request(_time, 0, scope));
        }
        Assert.Equal(1, _primary.Calls);

        _time.Advance(TimeSpan.FromSeconds(4.9));
        await store.AcquireAsync(Request(_time, 0, scope));
        Assert.Equal(1, _primary.Calls);

        _time.Advance(TimeSpan.FromSeconds(0.1));
        await store.AcquireAsync(Request(_time, 0, scope)); // probe, fails again
        await store.AcquireAsync(Request(_time, 0, scope));
        Assert.Equal(2, _primary.Calls);

        _primary.Failing = false;
        _time.Advance(TimeSpan.FromSeconds(5));
        await store.AcquireAsync(Request(_time, 0, scope)); // probe succeeds
        await store.AcquireAsync(Request(_time, 0, scope));
        Assert.Equal(4, _primary.Calls);
        Assert.False(store.IsDegraded);
    }

    [Fact]
    public async Task Acquire_PrimaryDown_ClosedMode_RefusesAsUnavailable()
    {
        var store = Create(RateLimitFailureModes.Closed);
        _primary.Failing = true;

        var decision = await store.AcquireAsync(Request(_time, 0, Tenant(rpm: 100)));

        Assert.False(decision.Admitted);
        Assert.Equal(new RateLimitRejection(-1, RateLimitKind.StoreUnavailable, TimeSpan.FromSeconds(5)), decision.Rejection);
        Assert.Single(decision.Usage);
    }

    [Fact]
    public async Task Acquire_TooBigOnlyForTheShare_IsRetryableNotNeverFits()
    {
        var store = Create(replicas: 2);
        _primary.Failing = true;

        var decision = await store.AcquireAsync(Request(_time, 800, Tenant(tpm: 1000)));

        Assert.Equal(RateLimitKind.Tokens, decision.Rejection!.Kind);
        Assert.False(decision.Rejection.NeverFits);
        Assert.Equal(TimeSpan.FromSeconds(5), decision.Rejection.RetryAfter);
    }

    [Fact]
    public async Task Complete_AdmittedByTheFallback_ReleasesThereEvenAfterRecovery()
    {
        var store = Create(replicas: 1);
        var scope = Tenant(concurrency: 1);
        _primary.Failing = true;
        var held = await store.AcquireAsync(Request(_time, 0, scope));
        Assert.False((await store.AcquireAsync(Request(_time, 0, scope))).Admitted);

        _primary.Failing = false;
        await store.CompleteAsync(held.Request, null);
        Assert.Equal(1, _primary.Calls);

        _primary.Failing = true;
        Assert.True((await store.AcquireAsync(Request(_time, 0, scope))).Admitted);
    }

    [Fact]
    public async Task Complete_PrimaryFails_DoesNotThrowAndMarksItDown()
    {
        var store = Create();
        var decision = await store.AcquireAsync(Request(_time, 0, Tenant(concurrency: 1)));
        _primary.Failing = true;

        await store.CompleteAsync(decision.Request, 10);

        Assert.True(store.IsDegraded);
    }

    [Fact]
    public async Task RecordSpend_PrimaryDown_LocalModeRecordsTheShare_ClosedModeOnlyDefersIt()
    {
        _primary.Failing = true;
        var scope = Tenant(daily: 1m);
        var periods = BudgetPeriods.At(_time.GetUtcNow());

        var local = await Create(replicas: 2).RecordSpendAsync(TenantName, [scope], 0.25m, periods);
        var closed = await Create(RateLimitFailureModes.Closed).RecordSpendAsync(TenantName, [scope], 0.25m, periods);

        Assert.Equal(0.25m, local.Single().DailyUsd);
        Assert.Empty(closed);
    }

    [Theory]
    [InlineData(RateLimitFailureModes.Local)]
    [InlineData(RateLimitFailureModes.Closed)]
    public async Task RecordSpend_DuringAnOutage_IsAddedToThePrimaryWhenItIsBack(string mode)
    {
        var store = Create(mode);
        var scope = Tenant(daily: 10m, monthly: 100m);
        var periods = BudgetPeriods.At(_time.GetUtcNow());
        await store.RecordSpendAsync(TenantName, [scope], 1m, periods);
        _primary.Failing = true;

        await store.RecordSpendAsync(TenantName, [scope], 0.25m, periods); // fails, marks the primary down
        await store.RecordSpendAsync(TenantName, [scope], 0.5m, periods);  // not even tried: within the retry interval
        Assert.Equal(0.75m, store.DeferredSpendUsd);

        _primary.Failing = false;
        _time.Advance(TimeSpan.FromSeconds(5));
        var admitted = await store.AcquireAsync(Request(_time, 0, scope)); // the probe that finds it back
        await store.SpendReplay;

        Assert.True(admitted.Admitted);
        Assert.Equal(0m, store.DeferredSpendUsd);
        var totals = await _primary.RecordSpendAsync(TenantName, [scope], 0m, periods);
        Assert.Equal(new BudgetSpend(1.75m, 1.75m), totals.Single());
    }

    [Fact]
    public async Task RecordSpend_ReplayFails_KeepsTheSpendForTheNextRecovery()
    {
        var store = Create();
        var scope = Tenant(daily: 10m);
        var periods = BudgetPeriods.At(_time.GetUtcNow());
        _primary.Failing = true;
        await store.RecordSpendAsync(TenantName, [scope], 0.25m, periods);
        _primary.Failing = false;
        _primary.FailSpendOnly = true;
        _time.Advance(TimeSpan.FromSeconds(5));

        await store.AcquireAsync(Request(_time, 0, scope)); // back for checks, but the replay fails
        await store.SpendReplay;
        Assert.Equal(0.25m, store.DeferredSpendUsd);
        Assert.True(store.IsDegraded);

        _primary.FailSpendOnly = false;
        _time.Advance(TimeSpan.FromSeconds(5));
        await store.AcquireAsync(Request(_time, 0, scope));
        await store.SpendReplay;

        Assert.Equal(0m, store.DeferredSpendUsd);
        Assert.Equal(0.25m, (await _primary.RecordSpendAsync(TenantName, [scope], 0m, periods)).Single().DailyUsd);
    }

    private sealed class FlakyStore(IRateLimitStore inner) : IRateLimitStore
    {
        public bool Failing { get; set; }
        public bool FailSpendOnly { get; set; }
        public int Calls { get; private set; }

        public ValueTask<RateLimitDecision> AcquireAsync(RateLimitRequest request)
        {
            Calls++;
            return Failing ? throw new TimeoutException("down") : inner.AcquireAsync(request);
        }

        public ValueTask CompleteAsync(RateLimitRequest request, long? actualTokens)
        {
            Calls++;
            return Failing ? ValueTask.FromException(new TimeoutException("down")) : inner.CompleteAsync(request, actualTokens);
        }

        public ValueTask<IReadOnlyList<BudgetSpend>> RecordSpendAsync(string tenant, IReadOnlyList<RateLimitScope> scopes, decimal costUsd, BudgetPeriods periods)
        {
            Calls++;
            return Failing || FailSpendOnly
                ? ValueTask.FromException<IReadOnlyList<BudgetSpend>>(new TimeoutException("down"))
                : inner.RecordSpendAsync(tenant, scopes, costUsd, periods);
        }
    }
}
