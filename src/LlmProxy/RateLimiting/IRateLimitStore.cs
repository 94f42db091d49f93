namespace LlmProxy.RateLimiting;

/// <summary>
/// Keeps the counters of the limits and decides, atomically for all scopes of a request, whether it is admitted.
/// Windows are sliding 60-second logs: a request is admitted when, counting it, no scope has more than its limit of
/// requests (or tokens) admitted in the last 60 seconds. All-or-nothing: a refused request consumes nothing.
/// </summary>
internal interface IRateLimitStore
{
    /// <summary>Checks every limit of every scope and, when all pass, consumes one request, the reserved tokens and a concurrency slot.</summary>
    ValueTask<RateLimitDecision> AcquireAsync(RateLimitRequest request);

    /// <summary>
    /// Ends an admitted request: replaces its token reservation by <paramref name="actualTokens"/> (null keeps the
    /// reservation) and frees its concurrency slot. Called exactly once per admitted request.
    /// </summary>
    ValueTask CompleteAsync(RateLimitRequest request, long? actualTokens);

    /// <summary>Adds <paramref name="costUsd"/> to the daily and monthly spend of each scope; returns the new totals, per scope.</summary>
    ValueTask<IReadOnlyList<BudgetSpend>> RecordSpendAsync(string tenant, IReadOnlyList<RateLimitScope> scopes, decimal costUsd, BudgetPeriods periods);
}

/// <summary>One request to limit.</summary>
/// <param name="Tenant">The tenant; every scope's counters live under it.</param>
/// <param name="RequestId">Unique id of this admission (the token reservation and the concurrency slot are kept under it).</param>
/// <param name="Tokens">Tokens to reserve: the prompt estimate plus the completion maximum.</param>
/// <param name="Periods">The budget periods the request falls in, from the gateway's clock.</param>
internal sealed record RateLimitRequest(string Tenant, string RequestId, IReadOnlyList<RateLimitScope> Scopes, long Tokens, BudgetPeriods Periods)
{
    public RateLimitRequest DividedBy(int replicas) =>
        replicas <= 1 ? this : this with { Scopes = Scopes.Select(s => s.DividedBy(replicas)).ToArray() };
}

/// <summary>What a store decided, with the state of every scope (after consuming, when admitted) for the response headers.</summary>
internal sealed class RateLimitDecision
{
    private RateLimitDecision(RateLimitRequest request, IRateLimitStore? admittedBy, RateLimitRejection? rejection, IReadOnlyList<ScopeUsage> usage)
    {
        Request = request;
        AdmittedBy = admittedBy;
        Rejection = rejection;
        Usage = usage;
    }

    /// <summary>The request as the deciding store saw it (with a fallback's reduced limits, if any).</summary>
    public RateLimitRequest Request { get; }

    /// <summary>The store holding the admitted request's reservation; the request is completed there. Null when refused.</summary>
    public IRateLimitStore? AdmittedBy { get; }

    public bool Admitted => AdmittedBy is not null;

    public RateLimitRejection? Rejection { get; }

    /// <summary>Usage of each scope of <see cref="Request"/>, in the same order.</summary>
    public IReadOnlyList<ScopeUsage> Usage { get; }

    public static RateLimitDecision Admit(RateLimitRequest request, IRateLimitStore store, IReadOnlyList<ScopeUsage> usage) =>
        new(request, store, null, usage);

    public static RateLimitDecision Reject(RateLimitRequest request, RateLimitRejection rejection, IReadOnlyList<ScopeUsage> usage) =>
        new(request, null, rejection, usage);
}

/// <summary>Why a request was refused.</summary>
/// <param name="ScopeIndex">Index of the refusing scope in the request, or -1 when no scope refused (store unavailable).</param>
/// <param name="RetryAfter">When the request would be admitted if nothing else changed; null when it never can be (it needs more tokens than the limit).</param>
internal sealed record RateLimitRejection(int ScopeIndex, RateLimitKind Kind, TimeSpan? RetryAfter)
{
    public bool NeverFits => RetryAfter is null;
}

/// <summary>
/// A scope's counters as a decision left them.
/// </summary>
/// <param name="Requests">Requests in the current window.</param>
/// <param name="RequestsReset">Time until the window holds no request any more (the limit is back to its full value).</param>
/// <param name="Tokens">Tokens in the current window.</param>
/// <param name="TokensReset">Time until the window holds no tokens any more.</param>
/// <param name="InFlight">Requests in flight.</param>
internal readonly record struct ScopeUsage(long Requests, TimeSpan RequestsReset, long Tokens, TimeSpan TokensReset, int InFlight, BudgetSpend Spend);

/// <summary>Spend of a scope in the current UTC day and month.</summary>
internal readonly record struct BudgetSpend(decimal DailyUsd, decimal MonthlyUsd);

/// <summary>A budget period: its id (part of counter keys) and when it ends.</summary>
internal readonly record struct BudgetPeriod(string Id, DateTimeOffset End);

/// <summary>The UTC day and calendar month a moment falls in. Budgets reset at their ends.</summary>
internal readonly record struct BudgetPeriods(BudgetPeriod Day, BudgetPeriod Month, DateTimeOffset Now)
{
    public static BudgetPeriods At(DateTimeOffset now)
    {
        var utc = now.ToUniversalTime();
        var day = new DateTimeOffset(utc.Year, utc.Month, utc.Day, 0, 0, 0, TimeSpan.Zero);
        var month = new DateTimeOffset(utc.Year, utc.Month, 1, 0, 0, 0, TimeSpan.Zero);
        return new BudgetPeriods(
            new BudgetPeriod(day.ToString("yyyyMMdd", System.Globalization.CultureInfo.InvariantCulture), day.AddDays(1)),
            new BudgetPeriod(month.ToString("yyyyMM", System.Globalization.CultureInfo.InvariantCulture), month.AddMonths(1)),
            utc);
    }
}
