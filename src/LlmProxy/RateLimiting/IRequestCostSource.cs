using LlmProxy.Pipeline;

namespace LlmProxy.RateLimiting;

/// <summary>
/// What a finished request cost, in US dollars, for the spend budgets. Metering provides the real implementation;
/// register it with <c>services.AddSingleton&lt;IRequestCostSource, ...&gt;()</c> (the default is replaced).
/// Called on the request's thread once the response is written: it must be fast and must not throw.
/// </summary>
public interface IRequestCostSource
{
    /// <summary>The cost of <paramref name="completion"/>, or null when it is not known (nothing is spent).</summary>
    decimal? GetCost(ChatRequestCompletion completion);
}

/// <summary>The default until metering is plugged in: no request has a known cost, so budgets never fill.</summary>
internal sealed class NullRequestCostSource : IRequestCostSource
{
    public decimal? GetCost(ChatRequestCompletion completion) => null;
}
