namespace LlmProxy.Routing;

/// <summary>A deployment's breaker state, with the gauge values the metrics export (0 closed, 1 half-open, 2 open).</summary>
public enum BreakerState
{
    Closed = 0,
    HalfOpen = 1,
    Open = 2,
}
