using LlmProxy.Pipeline;

namespace LlmProxy.RateLimiting;

/// <summary>
/// Adds what each request cost to the daily and monthly spend of every scope of it that has a budget. The write is
/// handed to the store without waiting (a completion listener must not do I/O inline); the Redis store sends it on
/// the same connection as later checks, so the replica's next check already sees it.
/// <para>Cache hits are not charged: they cost nothing upstream (they still count as requests).</para>
/// </summary>
internal sealed partial class BudgetSpendRecorder(
    RateLimitPolicyProvider policies,
    IRateLimitStore store,
    IRequestCostSource costs,
    RateLimitMetrics metrics,
    TimeProvider time,
    ILogger<BudgetSpendRecorder> logger) : IChatRequestCompletionListener
{
    public void OnCompleted(ChatRequestCompletion completion)
    {
        try
        {
            if (completion.Chat is not { CacheHit: false } chat)
            {
                return;
            }
            var identity = completion.Identity;
            var policy = policies.Resolve(identity.Tenant.Name, identity.KeyId, chat.Request.Model);
            if (!policy.HasBudget)
            {
                return;
            }
            if (costs.GetCost(completion) is not { } cost || cost <= 0)
            {
                return;
            }
            var scopes = policy.Scopes.Where(s => s.Limits.HasBudget).ToArray();
            var periods = BudgetPeriods.At(time.GetUtcNow());
            var recording = store.RecordSpendAsync(identity.Tenant.Name, scopes, cost, periods);
            if (recording.IsCompletedSuccessfully)
            {
                Observe(identity.Tenant.Name, scopes, periods, recording.Result);
            }
            else
            {
                _ = ObserveWhenDoneAsync(identity.Tenant.Name, scopes, periods, cost, recording);
            }
        }
        catch (Exception ex)
        {
            LogFailed(logger, completion.Identity.Tenant.Name, ex);
        }
    }

    private async Task ObserveWhenDoneAsync(string tenant, RateLimitScope[] scopes, BudgetPeriods periods, decimal cost, ValueTask<IReadOnlyList<BudgetSpend>> recording)
    {
        try
        {
            Observe(tenant, scopes, periods, await recording);
        }
        catch (Exception ex)
        {
            LogNotRecorded(logger, cost, tenant, ex);
        }
    }

    private void Observe(string tenant, RateLimitScope[] scopes, BudgetPeriods periods, IReadOnlyList<BudgetSpend> totals)
    {
        for (var i = 0; i < scopes.Length && i < totals.Count; i++)
        {
            if (scopes[i].Level == RateLimitLevel.Tenant)
            {
                metrics.ObserveSpend(tenant, scopes[i].Limits, periods, totals[i]);
            }
        }
    }

    [LoggerMessage(EventId = 5131, Level = LogLevel.Error, Message = "Could not account the spend of a request of tenant {Tenant}")]
    private static partial void LogFailed(ILogger logger, string tenant, Exception exception);

    [LoggerMessage(EventId = 5132, Level = LogLevel.Warning, Message = "Spend of {CostUsd} USD for tenant {Tenant} was not recorded")]
    private static partial void LogNotRecorded(ILogger logger, decimal costUsd, string tenant, Exception exception);
}
