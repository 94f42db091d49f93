using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using LlmProxy.Telemetry;

namespace LlmProxy.RateLimiting;

/// <summary>
/// The rate limiter's instruments on the <c>LlmProxy</c> meter. The one the metrics exposition already declares is
/// recorded through <see cref="GatewayMetrics"/> (one instrument per name on the meter, so one description):
/// <list type="bullet">
/// <item><c>llmproxy.ratelimit.rejections</c> (counter, {request}; tags <c>tenant</c>, <c>limit</c> = requests | tokens |
/// concurrency | budget_daily | budget_monthly | store_unavailable): requests refused by a limit.</item>
/// </list>
/// and the rate limiter adds:
/// <list type="bullet">
/// <item><c>llmproxy.ratelimit.budget.remaining.usd</c> (gauge, USD; tags <c>tenant</c>, <c>period</c> = daily | monthly): the
/// tenant-level budget left in the current UTC day or month, as this replica last saw the spend.</item>
/// <item><c>llmproxy.ratelimit.store.failures</c> (counter, {failure}; tag <c>operation</c>): failed round trips to the
/// shared store, each of which put the limiter in its failure mode.</item>
/// </list>
/// </summary>
internal sealed class RateLimitMetrics
{
    private readonly GatewayMetrics _gateway;
    private readonly Counter<long> _storeFailures;
    private readonly RateLimitPolicyProvider _policies;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, ObservedSpend> _spend = new(StringComparer.Ordinal);

    public RateLimitMetrics(IMeterFactory meterFactory, GatewayMetrics gateway, RateLimitPolicyProvider policies, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        ArgumentNullException.ThrowIfNull(gateway);
        _gateway = gateway;
        _policies = policies;
        _time = time;
        var meter = meterFactory.Create(GatewayMetrics.MeterName);
        _storeFailures = meter.CreateCounter<long>("llmproxy.ratelimit.store.failures", "{failure}",
            "Failed round trips to the shared rate limit store.");
        meter.CreateObservableGauge("llmproxy.ratelimit.budget.remaining.usd", ObserveBudgets, "{USD}",
            "Tenant budget left in the current UTC day or month.");
    }

    public void Rejected(string tenant, RateLimitKind kind) => _gateway.RecordRateLimitRejection(tenant, kind.Name());

    public void StoreFailed(string operation)
    {
        if (_storeFailures.Enabled)
        {
            _storeFailures.Add(1, new KeyValuePair<string, object?>("operation", operation));
        }
    }

    /// <summary>Remembers a tenant's spend in <paramref name="periods"/> as a store reported it, for the gauge.</summary>
    public void ObserveSpend(string tenant, ScopeLimits limits, BudgetPeriods periods, BudgetSpend spend)
    {
        if (limits.HasBudget)
        {
            _spend[tenant] = new ObservedSpend(limits.DailyBudgetUsd, limits.MonthlyBudgetUsd, periods.Day.Id, spend.DailyUsd, periods.Month.Id, spend.MonthlyUsd);
        }
    }

    internal IEnumerable<Measurement<double>> ObserveBudgets()
    {
        var periods = BudgetPeriods.At(_time.GetUtcNow());
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var measurements = new List<Measurement<double>>();
        foreach (var (tenant, observed) in _spend)
        {
            seen.Add(tenant);
            Add(measurements, tenant, "daily", observed.Daily, observed.DayId == periods.Day.Id ? observed.DailySpent : 0);
            Add(measurements, tenant, "monthly", observed.Monthly, observed.MonthId == periods.Month.Id ? observed.MonthlySpent : 0);
        }
        foreach (var (tenant, daily, monthly) in _policies.ConfiguredTenantBudgets())
        {
            if (seen.Add(tenant))
            {
                Add(measurements, tenant, "daily", daily, 0);
                Add(measurements, tenant, "monthly", monthly, 0);
            }
        }
        return measurements;
    }

    private static void Add(List<Measurement<double>> measurements, string tenant, string period, decimal? budget, decimal spent)
    {
        if (budget is { } limit)
        {
            measurements.Add(new Measurement<double>((double)Math.Max(0, limit - spent),
                new KeyValuePair<string, object?>("tenant", tenant), new KeyValuePair<string, object?>("period", period)));
        }
    }

    private sealed record ObservedSpend(decimal? Daily, decimal? Monthly, string DayId, decimal DailySpent, string MonthId, decimal MonthlySpent);
}
