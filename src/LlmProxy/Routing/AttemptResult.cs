using LlmProxy.Providers;

namespace LlmProxy.Routing;

/// <summary>How one upstream attempt ended, as the breaker and the failover loop see it.</summary>
public sealed record AttemptResult(AttemptDisposition Disposition, UpstreamFailure? Failure, TimeSpan Duration)
{
    /// <summary>
    /// Whether the attempt counts against the deployment, in both breakers and the statistics: a failure another
    /// deployment could have served (connection errors, timeouts, 5xx, 429, 401/403, broken responses), or a stream
    /// that broke after its first byte. Client errors and cancellations do not.
    /// </summary>
    public bool CountsAsFailure => Disposition == AttemptDisposition.FailedAfterFirstByte
        || (Disposition == AttemptDisposition.Failed && Failure is { IsRetryable: true });

    /// <summary>The attempt was cut short by the route's retry deadline: no time is left for another.</summary>
    public bool EndedByRetryDeadline { get; init; }
}

public enum AttemptDisposition
{
    /// <summary>A response reached the client (for streams: the stream ended normally).</summary>
    Served,

    /// <summary>The attempt failed before anything reached the client.</summary>
    Failed,

    /// <summary>The response had started, then the upstream failed; the client got an error event.</summary>
    FailedAfterFirstByte,

    /// <summary>The client went away; says nothing about the deployment.</summary>
    Cancelled,
}
