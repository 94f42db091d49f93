using LlmProxy.Providers;

namespace LlmProxy.Telemetry;

/// <summary>
/// Label values with bounded cardinality. Every label value the gateway records comes from configuration
/// (tenants, models, deployments, providers) or from a fixed set defined here; never from request content.
/// </summary>
internal static class MetricLabels
{
    /// <summary>The model label of a model name the configuration does not know.</summary>
    public const string UnknownModel = "unknown";

    /// <summary>The provider/deployment label when no deployment answered (e.g. every attempt failed).</summary>
    public const string None = "none";

    /// <summary>The provider/deployment label of a response served from the gateway's cache.</summary>
    public const string Cache = "cache";

    private static readonly string[] StatusClasses = ["1xx", "2xx", "3xx", "4xx", "5xx"];

    /// <summary>
    /// The model label for a model name a client sent: the name itself when it is a configured route, else
    /// <see cref="UnknownModel"/>, so that clients cannot create series by inventing model names.
    /// </summary>
    public static string Model<TRoute>(string? requestedModel, IReadOnlyDictionary<string, TRoute> configuredRoutes)
    {
        ArgumentNullException.ThrowIfNull(configuredRoutes);
        return requestedModel is not null && configuredRoutes.ContainsKey(requestedModel) ? requestedModel : UnknownModel;
    }

    /// <summary><c>2xx</c>, <c>4xx</c>, ... for an HTTP status code; <c>other</c> outside 100-599.</summary>
    public static string StatusClass(int statusCode) =>
        statusCode is >= 100 and < 600 ? StatusClasses[statusCode / 100 - 1] : "other";

    public static string Bool(bool value) => value ? "true" : "false";
}

/// <summary>The <c>outcome</c> of an upstream attempt and the <c>reason</c> of a failover: a small fixed set.</summary>
internal static class UpstreamOutcomes
{
    public const string Success = "success";
    public const string RateLimited = "rate_limited";
    public const string Timeout = "timeout";
    public const string AuthError = "auth_error";
    public const string ClientError = "client_error";
    public const string ServerError = "server_error";
    public const string ConnectError = "connect_error";
    public const string TransportError = "transport_error";
    public const string ProtocolError = "protocol_error";
    public const string StreamError = "stream_error";
    public const string ClientDisconnected = "client_disconnected";
    public const string Other = "other";

    /// <summary>
    /// <see cref="Success"/> for no failure, else the class of <see cref="UpstreamFailure.Reason"/>; a reason of the provider's
    /// own (<c>bedrock_ThrottlingException</c>) is classed by the status the provider mapped it to.
    /// </summary>
    public static string FromFailure(UpstreamFailure? failure)
    {
        if (failure is null)
        {
            return Success;
        }
        var outcome = FromReason(failure.Reason);
        return outcome == Other && failure.UpstreamStatus is { } status ? FromStatus(status) : outcome;
    }

    /// <summary>The outcome of a failure classified from an HTTP status.</summary>
    public static string FromStatus(int status) => status switch
    {
        429 => RateLimited,
        401 or 403 => AuthError,
        408 or 504 => Timeout,
        >= 400 and < 500 => ClientError,
        >= 500 and < 600 => ServerError,
        _ => Other,
    };

    /// <summary>Maps an <see cref="UpstreamFailure.Reason"/> (<c>status_503</c>, <c>connect_error</c>, ...) to an outcome.</summary>
    public static string FromReason(string? reason)
    {
        switch (reason)
        {
            case null or "":
                return Other;
            case "status_429":
                return RateLimited;
            case "status_401" or "status_403":
                return AuthError;
            case "status_408" or "status_504" or "timeout":
                return Timeout;
            case "connect_error":
                return ConnectError;
            case "response_body_error":
                return TransportError;
            case "protocol_error":
                return ProtocolError;
            case "stream_error_before_first_byte":
                return StreamError;
            case "client_disconnected":
                return ClientDisconnected;
        }
        if (reason.StartsWith("forwarder_", StringComparison.Ordinal))
        {
            return TransportError;
        }
        if (reason.StartsWith("status_", StringComparison.Ordinal) && reason.Length == "status_".Length + 3)
        {
            return reason["status_".Length] switch
            {
                '4' => ClientError,
                '5' => ServerError,
                _ => Other,
            };
        }
        return Other;
    }
}

/// <summary>The <c>result</c> label of <c>llmproxy.cache.requests</c>.</summary>
internal enum CacheResult
{
    Hit,
    Miss,
    /// <summary>The request was not eligible for the cache (e.g. a non-deterministic request or a no-cache header).</summary>
    Bypass,
}

/// <summary>Values of <c>llmproxy.deployment.breaker_state</c>.</summary>
internal static class BreakerStates
{
    public const int Closed = 0;
    public const int HalfOpen = 1;
    public const int Open = 2;
}
