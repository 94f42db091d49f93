using System.Globalization;
using System.Text;
using LlmProxy.OpenAi;

namespace LlmProxy.RateLimiting;

/// <summary>OpenAI's rate-limit response headers, for the tightest applicable limit.</summary>
internal static class RateLimitHeaders
{
    public const string LimitRequests = "x-ratelimit-limit-requests";
    public const string RemainingRequests = "x-ratelimit-remaining-requests";
    public const string ResetRequests = "x-ratelimit-reset-requests";
    public const string LimitTokens = "x-ratelimit-limit-tokens";
    public const string RemainingTokens = "x-ratelimit-remaining-tokens";
    public const string ResetTokens = "x-ratelimit-reset-tokens";

    /// <summary>Milliseconds to wait, as OpenAI sends it next to <c>Retry-After</c> (the OpenAI SDKs prefer it).</summary>
    public const string RetryAfterMs = "retry-after-ms";

    /// <summary>
    /// The headers for a decision: for requests and for tokens separately, the scope with the least remaining (the
    /// smaller limit on a tie). A kind that no scope limits gets no headers, nor does a refusal because the store is unavailable.
    /// </summary>
    public static List<KeyValuePair<string, string>> For(RateLimitDecision decision)
    {
        var headers = new List<KeyValuePair<string, string>>(6);
        if (decision.Rejection is { ScopeIndex: < 0 })
        {
            return headers; // the store could not be read: there is nothing true to report
        }
        var scopes = decision.Request.Scopes;
        var usage = decision.Usage;
        int? bestRequests = null, bestTokens = null;
        long requestsRemaining = 0, tokensRemaining = 0;
        for (var i = 0; i < scopes.Count && i < usage.Count; i++)
        {
            var limits = scopes[i].Limits;
            if (limits.RequestsPerMinute is { } rpm)
            {
                var remaining = Math.Max(0, rpm - usage[i].Requests);
                if (bestRequests is null || remaining < requestsRemaining
                    || (remaining == requestsRemaining && rpm < scopes[bestRequests.Value].Limits.RequestsPerMinute))
                {
                    (bestRequests, requestsRemaining) = (i, remaining);
                }
            }
            if (limits.TokensPerMinute is { } tpm)
            {
                var remaining = Math.Max(0, tpm - usage[i].Tokens);
                if (bestTokens is null || remaining < tokensRemaining
                    || (remaining == tokensRemaining && tpm < scopes[bestTokens.Value].Limits.TokensPerMinute))
                {
                    (bestTokens, tokensRemaining) = (i, remaining);
                }
            }
        }
        if (bestRequests is { } r)
        {
            headers.Add(new(LimitRequests, Integer(scopes[r].Limits.RequestsPerMinute!.Value)));
            headers.Add(new(RemainingRequests, Integer(requestsRemaining)));
            headers.Add(new(ResetRequests, OpenAiDuration.Format(usage[r].RequestsReset)));
        }
        if (bestTokens is { } t)
        {
            headers.Add(new(LimitTokens, Integer(scopes[t].Limits.TokensPerMinute!.Value)));
            headers.Add(new(RemainingTokens, Integer(tokensRemaining)));
            headers.Add(new(ResetTokens, OpenAiDuration.Format(usage[t].TokensReset)));
        }
        return headers;
    }

    private static string Integer(long value) => value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>Durations as OpenAI writes them in <c>x-ratelimit-reset-*</c> (Go's format): <c>120ms</c>, <c>1s</c>, <c>1.5s</c>, <c>6m0s</c>, <c>1h2m3s</c>.</summary>
internal static class OpenAiDuration
{
    public static string Format(TimeSpan value)
    {
        var ms = value <= TimeSpan.Zero ? 0 : (long)Math.Ceiling(value.TotalMilliseconds);
        if (ms == 0)
        {
            return "0s";
        }
        if (ms < 1000)
        {
            return ms.ToString(CultureInfo.InvariantCulture) + "ms";
        }
        var builder = new StringBuilder();
        var hours = ms / 3_600_000;
        var minutes = ms / 60_000 % 60;
        var seconds = ms % 60_000 / 1000m;
        if (hours > 0)
        {
            builder.Append(hours.ToString(CultureInfo.InvariantCulture)).Append('h');
        }
        if (hours > 0 || minutes > 0)
        {
            builder.Append(minutes.ToString(CultureInfo.InvariantCulture)).Append('m');
        }
        builder.Append(seconds.ToString("0.###", CultureInfo.InvariantCulture)).Append('s');
        return builder.ToString();
    }
}

/// <summary>The errors of the rate limiter, in OpenAI's shape.</summary>
internal static class RateLimitErrors
{
    public const string RateLimitExceeded = "rate_limit_exceeded";
    public const string BudgetExceeded = "budget_exceeded";
    public const string TokensExceedLimit = "tokens_exceed_limit";
    public const string Unavailable = "rate_limiter_unavailable";

    public static GatewayError For(RateLimitDecision decision, TokenEstimate estimate)
    {
        var rejection = decision.Rejection ?? throw new ArgumentException("The decision admitted the request.", nameof(decision));
        var request = decision.Request;
        if (rejection.ScopeIndex < 0)
        {
            return WithRetry(new GatewayError(StatusCodes.Status503ServiceUnavailable, new OpenAiError(
                "The gateway cannot check rate limits right now, so it is not accepting requests. Please try again shortly.",
                GatewayErrors.ServerError, null, Unavailable)), rejection.RetryAfter);
        }

        var scope = request.Scopes[rejection.ScopeIndex];
        var usage = decision.Usage[rejection.ScopeIndex];
        var who = scope.Describe(request.Tenant);
        var limits = scope.Limits;
        var wait = rejection.RetryAfter is { } retry ? OpenAiDuration.Format(retry) : null;
        switch (rejection.Kind)
        {
            case RateLimitKind.Tokens when rejection.NeverFits:
                return GatewayErrors.BadRequest(Invariant(
                    $"This request needs about {request.Tokens} tokens ({estimate.PromptTokens} estimated for the prompt + {estimate.CompletionTokens} for the completion), more than the limit of {limits.TokensPerMinute} tokens per minute for {who}, so it can never be served. Lower max_completion_tokens (or max_tokens) or shorten the prompt."),
                    param: null, TokensExceedLimit);
            case RateLimitKind.Tokens:
                return TooMany("tokens", Invariant(
                    $"Rate limit reached for {who} on tokens per min (TPM): Limit {limits.TokensPerMinute}, Used {usage.Tokens}, Requested {request.Tokens}. Please try again in {wait}."),
                    RateLimitExceeded, rejection.RetryAfter);
            case RateLimitKind.Requests:
                return TooMany("requests", Invariant(
                    $"Rate limit reached for {who} on requests per min (RPM): Limit {limits.RequestsPerMinute}, Used {usage.Requests}, Requested 1. Please try again in {wait}."),
                    RateLimitExceeded, rejection.RetryAfter);
            case RateLimitKind.Concurrency:
                return TooMany("requests", Invariant(
                    $"Too many concurrent requests for {who}: Limit {limits.ConcurrentRequests}, In flight {usage.InFlight}. Please try again when one of them has finished."),
                    RateLimitExceeded, rejection.RetryAfter);
            case RateLimitKind.DailyBudget:
                return TooMany("insufficient_quota", Invariant(
                    $"The daily budget of {limits.DailyBudgetUsd} USD for {who} is used up ({usage.Spend.DailyUsd:0.######} USD spent today, UTC). It resets in {wait}."),
                    BudgetExceeded, rejection.RetryAfter);
            default:
                return TooMany("insufficient_quota", Invariant(
                    $"The monthly budget of {limits.MonthlyBudgetUsd} USD for {who} is used up ({usage.Spend.MonthlyUsd:0.######} USD spent this month, UTC). It resets in {wait}."),
                    BudgetExceeded, rejection.RetryAfter);
        }
    }

    private static GatewayError TooMany(string type, string message, string code, TimeSpan? retryAfter) =>
        WithRetry(new GatewayError(StatusCodes.Status429TooManyRequests, new OpenAiError(message, type, null, code)), retryAfter);

    private static GatewayError WithRetry(GatewayError error, TimeSpan? retryAfter) => retryAfter is { } wait
        ? error with { RetryAfterSeconds = (int)Math.Clamp(Math.Ceiling(wait.TotalSeconds), 1, int.MaxValue) }
        : error;

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
