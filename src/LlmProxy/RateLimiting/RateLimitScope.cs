using System.Globalization;

namespace LlmProxy.RateLimiting;

/// <summary>The limits of one level (tenant, key or model). Null means not limited.</summary>
internal sealed record ScopeLimits(int? RequestsPerMinute, int? TokensPerMinute, int? ConcurrentRequests, decimal? DailyBudgetUsd, decimal? MonthlyBudgetUsd)
{
    public static ScopeLimits From(RateLimitValues values) =>
        new(values.RequestsPerMinute, values.TokensPerMinute, values.ConcurrentRequests, values.DailyBudgetUsd, values.MonthlyBudgetUsd);

    public bool IsEmpty => RequestsPerMinute is null && TokensPerMinute is null && ConcurrentRequests is null && !HasBudget;

    public bool HasBudget => DailyBudgetUsd is not null || MonthlyBudgetUsd is not null;

    /// <summary>
    /// This replica's share when <paramref name="replicas"/> replicas each enforce the limits on their own: rounded down
    /// (so that the shares never add up to more than the limit), but at least 1 so that a tenant is never locked out.
    /// </summary>
    public ScopeLimits DividedBy(int replicas) => replicas <= 1 ? this : new(
        Share(RequestsPerMinute, replicas), Share(TokensPerMinute, replicas), Share(ConcurrentRequests, replicas),
        DailyBudgetUsd / replicas, MonthlyBudgetUsd / replicas);

    private static int? Share(int? limit, int replicas) => limit is { } value ? Math.Max(1, value / replicas) : null;
}

/// <summary>
/// One level whose limits apply to a request, with counters of its own. <see cref="Key"/> identifies the counters
/// within the tenant (<c>t</c>, <c>k:{keyId}</c>, <c>m:{model}</c>, escaped so that it is safe in a Redis key).
/// </summary>
internal sealed record RateLimitScope(string Key, RateLimitLevel Level, string Name, ScopeLimits Limits)
{
    public const string TenantKey = "t";

    public static string KeyFor(RateLimitLevel level, string name) => level switch
    {
        RateLimitLevel.Tenant => TenantKey,
        RateLimitLevel.Key => "k:" + Uri.EscapeDataString(name),
        _ => "m:" + Uri.EscapeDataString(name),
    };

    /// <summary>How the scope is named to the client in error messages.</summary>
    public string Describe(string tenant) => Level switch
    {
        RateLimitLevel.Tenant => string.Create(CultureInfo.InvariantCulture, $"tenant '{tenant}'"),
        RateLimitLevel.Key => string.Create(CultureInfo.InvariantCulture, $"key '{Name}' of tenant '{tenant}'"),
        _ => string.Create(CultureInfo.InvariantCulture, $"model '{Name}' for tenant '{tenant}'"),
    };

    public RateLimitScope DividedBy(int replicas) => replicas <= 1 ? this : this with { Limits = Limits.DividedBy(replicas) };
}

internal enum RateLimitLevel
{
    Tenant,
    Key,
    Model,
}

/// <summary>The limit that refused a request; also the <c>limit</c> tag of <c>llmproxy.ratelimit.rejections</c>.</summary>
internal enum RateLimitKind
{
    Requests,
    Tokens,
    Concurrency,
    DailyBudget,
    MonthlyBudget,
    StoreUnavailable,
}

internal static class RateLimitKindNames
{
    public static string Name(this RateLimitKind kind) => kind switch
    {
        RateLimitKind.Requests => "requests",
        RateLimitKind.Tokens => "tokens",
        RateLimitKind.Concurrency => "concurrency",
        RateLimitKind.DailyBudget => "budget_daily",
        RateLimitKind.MonthlyBudget => "budget_monthly",
        _ => "store_unavailable",
    };

    public static RateLimitKind Parse(string name) => name switch
    {
        "requests" => RateLimitKind.Requests,
        "tokens" => RateLimitKind.Tokens,
        "concurrency" => RateLimitKind.Concurrency,
        "budget_daily" => RateLimitKind.DailyBudget,
        "budget_monthly" => RateLimitKind.MonthlyBudget,
        _ => RateLimitKind.StoreUnavailable,
    };
}
