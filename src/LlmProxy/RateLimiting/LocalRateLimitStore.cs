using System.Collections.Concurrent;

namespace LlmProxy.RateLimiting;

/// <summary>
/// Counters in this process: exact for a single gateway instance. Each tenant's scopes sit behind one lock, so a
/// request is checked and consumed across its tenant, key and model scopes at once. Windows run on
/// <see cref="TimeProvider.GetTimestamp"/> (monotonic); budget periods on the UTC date the caller passes.
/// </summary>
internal sealed class LocalRateLimitStore : IRateLimitStore
{
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(1);

    /// <summary>A concurrency refusal cannot know when a slot frees; clients are told to retry after this.</summary>
    public static readonly TimeSpan ConcurrencyRetryAfter = TimeSpan.FromSeconds(1);

    private readonly TimeProvider _time;
    private readonly long _window;
    private readonly ConcurrentDictionary<string, TenantCounters> _tenants = new(StringComparer.Ordinal);

    public LocalRateLimitStore(TimeProvider time)
    {
        _time = time;
        _window = (long)(Window.TotalSeconds * time.TimestampFrequency);
    }

    public ValueTask<RateLimitDecision> AcquireAsync(RateLimitRequest request)
    {
        var tenant = _tenants.GetOrAdd(request.Tenant, static (_, window) => new TenantCounters(window), _window);
        var now = _time.GetTimestamp();
        lock (tenant)
        {
            var scopes = request.Scopes;
            var counters = new ScopeCounters[scopes.Count];
            RateLimitRejection? rejection = null;
            for (var i = 0; i < scopes.Count; i++)
            {
                var c = counters[i] = tenant.Get(scopes[i].Key);
                c.Requests.Evict(now);
                c.Tokens.Evict(now);
                rejection = Worse(rejection, Check(i, scopes[i].Limits, c, request, now));
            }

            if (rejection is null)
            {
                for (var i = 0; i < scopes.Count; i++)
                {
                    var limits = scopes[i].Limits;
                    if (limits.RequestsPerMinute is not null)
                    {
                        counters[i].Requests.Add(now, 1);
                    }
                    if (limits.TokensPerMinute is not null)
                    {
                        counters[i].Tokens.Add(now, request.Tokens, request.RequestId);
                    }
                    if (limits.ConcurrentRequests is not null)
                    {
                        counters[i].InFlight.Add(request.RequestId);
                    }
                }
            }

            var usage = new ScopeUsage[scopes.Count];
            for (var i = 0; i < scopes.Count; i++)
            {
                var c = counters[i];
                usage[i] = new ScopeUsage(c.Requests.Count, ToTimeSpan(c.Requests.UntilEmpty(now)), c.Tokens.Total,
                    ToTimeSpan(c.Tokens.UntilEmpty(now)), c.InFlight.Count, c.Spend.Current(request.Periods));
            }
            return ValueTask.FromResult(rejection is null
                ? RateLimitDecision.Admit(request, this, usage)
                : RateLimitDecision.Reject(request, rejection, usage));
        }
    }

    public ValueTask CompleteAsync(RateLimitRequest request, long? actualTokens)
    {
        if (!_tenants.TryGetValue(request.Tenant, out var tenant))
        {
            return ValueTask.CompletedTask;
        }
        var now = _time.GetTimestamp();
        lock (tenant)
        {
            foreach (var scope in request.Scopes)
            {
                var c = tenant.Get(scope.Key);
                if (scope.Limits.TokensPerMinute is not null && actualTokens is { } actual)
                {
                    c.Tokens.Evict(now);
                    if (!c.Tokens.TryAdjust(request.RequestId, actual) && actual > request.Tokens)
                    {
                        // The reservation has left the window (a request longer than the window): charge what it did not cover, now.
                        c.Tokens.Add(now, actual - request.Tokens);
                    }
                }
                if (scope.Limits.ConcurrentRequests is not null)
                {
                    c.InFlight.Remove(request.RequestId);
                }
            }
        }
        return ValueTask.CompletedTask;
    }

    public ValueTask<IReadOnlyList<BudgetSpend>> RecordSpendAsync(string tenantName, IReadOnlyList<RateLimitScope> scopes, decimal costUsd, BudgetPeriods periods)
    {
        var tenant = _tenants.GetOrAdd(tenantName, static (_, window) => new TenantCounters(window), _window);
        var totals = new BudgetSpend[scopes.Count];
        lock (tenant)
        {
            for (var i = 0; i < scopes.Count; i++)
            {
                totals[i] = tenant.Get(scopes[i].Key).Spend.Add(periods, costUsd);
            }
        }
        return ValueTask.FromResult<IReadOnlyList<BudgetSpend>>(totals);
    }

    private RateLimitRejection? Check(int index, ScopeLimits limits, ScopeCounters c, RateLimitRequest request, long now)
    {
        RateLimitRejection? worst = null;
        if (limits.TokensPerMinute is { } tpm)
        {
            var wait = c.Tokens.WaitFor(now, request.Tokens, tpm);
            if (wait is null)
            {
                return new RateLimitRejection(index, RateLimitKind.Tokens, null);
            }
            if (wait > 0)
            {
                worst = Worse(worst, new RateLimitRejection(index, RateLimitKind.Tokens, ToTimeSpan(wait.Value)));
            }
        }
        if (limits.RequestsPerMinute is { } rpm && c.Requests.WaitFor(now, 1, rpm) is > 0 and var requestWait)
        {
            worst = Worse(worst, new RateLimitRejection(index, RateLimitKind.Requests, ToTimeSpan(requestWait)));
        }
        if (limits.ConcurrentRequests is { } concurrency && c.InFlight.Count >= concurrency)
        {
            worst = Worse(worst, new RateLimitRejection(index, RateLimitKind.Concurrency, ConcurrencyRetryAfter));
        }
        var spend = c.Spend.Current(request.Periods);
        if (limits.DailyBudgetUsd is { } daily && spend.DailyUsd >= daily)
        {
            worst = Worse(worst, new RateLimitRejection(index, RateLimitKind.DailyBudget, request.Periods.Day.End - request.Periods.Now));
        }
        if (limits.MonthlyBudgetUsd is { } monthly && spend.MonthlyUsd >= monthly)
        {
            worst = Worse(worst, new RateLimitRejection(index, RateLimitKind.MonthlyBudget, request.Periods.Month.End - request.Periods.Now));
        }
        return worst;
    }

    /// <summary>
    /// Of two refusals, the one to report: a request that can never fit is reported as such (retrying cannot help);
    /// otherwise the longest wait, since the request passes only when every limit does. Earlier scopes win ties.
    /// </summary>
    internal static RateLimitRejection? Worse(RateLimitRejection? a, RateLimitRejection? b)
    {
        if (a is null || b is null)
        {
            return a ?? b;
        }
        if (a.NeverFits || b.NeverFits)
        {
            return a.NeverFits ? a : b;
        }
        return b.RetryAfter > a.RetryAfter ? b : a;
    }

    private TimeSpan ToTimeSpan(long units) =>
        TimeSpan.FromTicks((long)((decimal)units * TimeSpan.TicksPerSecond / _time.TimestampFrequency));

    private sealed class TenantCounters(long window)
    {
        private readonly Dictionary<string, ScopeCounters> _scopes = new(StringComparer.Ordinal);

        public ScopeCounters Get(string key)
        {
            if (!_scopes.TryGetValue(key, out var counters))
            {
                _scopes[key] = counters = new ScopeCounters(window);
            }
            return counters;
        }
    }

    private sealed class ScopeCounters(long window)
    {
        public SlidingWindowLog Requests { get; } = new(window);
        public SlidingWindowLog Tokens { get; } = new(window);
        public HashSet<string> InFlight { get; } = new(StringComparer.Ordinal);
        public SpendCounter Spend { get; } = new();
    }

    private sealed class SpendCounter
    {
        private string? _day;
        private decimal _daily;
        private string? _month;
        private decimal _monthly;

        public BudgetSpend Current(BudgetPeriods periods) =>
            new(_day == periods.Day.Id ? _daily : 0, _month == periods.Month.Id ? _monthly : 0);

        public BudgetSpend Add(BudgetPeriods periods, decimal cost)
        {
            if (_day != periods.Day.Id)
            {
                (_day, _daily) = (periods.Day.Id, 0);
            }
            if (_month != periods.Month.Id)
            {
                (_month, _monthly) = (periods.Month.Id, 0);
            }
            _daily += cost;
            _monthly += cost;
            return new BudgetSpend(_daily, _monthly);
        }
    }
}
