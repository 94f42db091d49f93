using System.Globalization;
using LlmProxy.OpenAi;
using LlmProxy.Pipeline;

namespace LlmProxy.RateLimiting;

/// <summary>
/// The chat pipeline stage that enforces the limits. It is registered before the response cache, so every request,
/// cached or not, counts; it then:
/// <list type="number">
/// <item>reserves an estimate of the request's tokens (prompt estimate + completion maximum) with one request and a
/// concurrency slot in every applicable scope, atomically, or refuses the request (429, or 400 when it can never fit);</item>
/// <item>adds OpenAI's <c>x-ratelimit-*</c> headers to the response whatever it turns out to be (through
/// <see cref="HttpResponse.OnStarting(Func{Task})"/>, since failover clears the response between attempts);</item>
/// <item>when the request ends (served, failed, or the client went away), replaces the reservation by the reported
/// usage (0 for a cache hit, the estimate when nothing was reported) and frees the concurrency slot.</item>
/// </list>
/// </summary>
internal sealed partial class RateLimitingChatMiddleware(
    RateLimitPolicyProvider policies,
    IRateLimitStore store,
    RateLimitMetrics metrics,
    TimeProvider time,
    ILogger<RateLimitingChatMiddleware> logger) : IChatMiddleware
{
    public Task InvokeAsync(ChatContext context, ChatDelegate next)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(next);
        var identity = context.Identity;
        var policy = policies.Resolve(identity.Tenant.Name, identity.KeyId, context.Request.Model);
        return policy.Scopes.Count == 0 ? next(context) : InvokeLimitedAsync(context, next, policy);
    }

    private async Task InvokeLimitedAsync(ChatContext context, ChatDelegate next, RateLimitPolicy policy)
    {
        var tenant = context.Identity.Tenant.Name;
        var estimate = policy.LimitsTokens ? TokenEstimator.Estimate(context.Request.Body, policy.DefaultMaxTokens) : default;
        var request = new RateLimitRequest(tenant, Guid.NewGuid().ToString("N"), policy.Scopes, estimate.Total, BudgetPeriods.At(time.GetUtcNow()));

        // The store handles its own failures (failure mode); it is not given the request's cancellation, so that a
        // reservation made for a client that has just gone away is still released below.
        var decision = await store.AcquireAsync(request);
        var http = context.HttpContext;
        var headers = RateLimitHeaders.For(decision);
        if (headers.Count > 0)
        {
            http.Response.OnStarting(static state =>
            {
                var (response, values) = ((HttpResponse, List<KeyValuePair<string, string>>))state;
                foreach (var (name, value) in values)
                {
                    response.Headers[name] = value;
                }
                return Task.CompletedTask;
            }, (http.Response, headers));
        }
        ObserveSpend(decision);

        if (!decision.Admitted)
        {
            var rejection = decision.Rejection!;
            metrics.Rejected(tenant, rejection.Kind);
            var error = RateLimitErrors.For(decision, estimate);
            LogRejected(logger, tenant, context.Identity.KeyId, context.Request.Model, rejection.Kind.Name(), error.StatusCode, rejection.RetryAfter?.TotalMilliseconds);
            context.ErrorCode = error.Error.Code;
            if (rejection.RetryAfter is { } wait && error.StatusCode != StatusCodes.Status400BadRequest)
            {
                http.Response.Headers[RateLimitHeaders.RetryAfterMs] = Math.Ceiling(wait.TotalMilliseconds).ToString(CultureInfo.InvariantCulture);
            }
            await ErrorResponseWriter.WriteAsync(http, error);
            return;
        }

        try
        {
            await next(context);
        }
        finally
        {
            // Cache hits cost no upstream tokens; without reported usage the reservation stands.
            long? actual = context.CacheHit ? 0 : context.Usage?.TotalTokens;
            try
            {
                await decision.AdmittedBy!.CompleteAsync(decision.Request, actual);
            }
            catch (Exception ex)
            {
                LogCompleteFailed(logger, tenant, ex);
            }
        }
    }

    private void ObserveSpend(RateLimitDecision decision)
    {
        if (decision.Rejection is { ScopeIndex: < 0 })
        {
            return; // the store was not reached: nothing was read
        }
        var scopes = decision.Request.Scopes;
        for (var i = 0; i < scopes.Count && i < decision.Usage.Count; i++)
        {
            if (scopes[i].Level == RateLimitLevel.Tenant && scopes[i].Limits.HasBudget)
            {
                metrics.ObserveSpend(decision.Request.Tenant, scopes[i].Limits, decision.Request.Periods, decision.Usage[i].Spend);
            }
        }
    }

    [LoggerMessage(EventId = 5141, Level = LogLevel.Information,
        Message = "Rate limited tenant={Tenant} key={KeyId} model={Model} limit={Limit} status={Status} retry_after_ms={RetryAfterMs}")]
    private static partial void LogRejected(ILogger logger, string tenant, string keyId, string model, string limit, int status, double? retryAfterMs);

    [LoggerMessage(EventId = 5142, Level = LogLevel.Error, Message = "Could not release the rate limit reservation of a request of tenant {Tenant}")]
    private static partial void LogCompleteFailed(ILogger logger, string tenant, Exception exception);
}
