using LlmProxy.Pipeline;
using LlmProxy.RateLimiting;

namespace LlmProxy.Metering;

/// <summary>Feeds the spend budgets with the cost metering records, so a budget trips on exactly what the ledger bills.</summary>
internal sealed class UsageCostSource(UsageRecordFactory records) : IRequestCostSource
{
    public decimal? GetCost(ChatRequestCompletion completion) => records.GetOrCreate(completion).CostUsd;
}
