using System.Text.Json.Serialization;

namespace LlmProxy.Metering;

/// <summary>
/// One chat completion request as the usage ledger keeps it: who asked (tenant, key id, application), what for
/// (requested model, serving provider and deployment), how it went (status, error, latency) and what it used
/// (tokens and cost). Every authenticated chat request produces exactly one record, served, cached or failed.
/// </summary>
/// <remarks>
/// A record is identified by <see cref="RequestId"/> and <see cref="Timestamp"/> together (<see cref="Key"/>):
/// stores write it idempotently under that key, so writing it again (a retried batch, a replayed spill file)
/// never duplicates it, and a client that reuses an <c>x-request-id</c> still gets one record per request.
/// </remarks>
public sealed record UsageRecord
{
    /// <summary>The request id (<c>x-request-id</c>, <see cref="HttpContext.TraceIdentifier"/>).</summary>
    public required string RequestId { get; init; }

    /// <summary>When the request started, UTC, to the tick.</summary>
    public required DateTimeOffset Timestamp { get; init; }

    public required string Tenant { get; init; }

    /// <summary>The configured id of the key the request used; never the key itself.</summary>
    public required string KeyId { get; init; }

    /// <summary>The calling application or agent: the <c>x-llmproxy-agent</c> header, else OpenAI's <c>user</c> field.</summary>
    public string? Agent { get; init; }

    /// <summary>The client-facing model name, as the client sent it; null when the body could not be read.</summary>
    public string? RequestedModel { get; init; }

    /// <summary>Provider of the deployment that answered (its <c>Provider</c> setting); null when none did.</summary>
    public string? Provider { get; init; }

    public string? Deployment { get; init; }

    /// <summary>The model id the upstream knows, of the deployment that answered.</summary>
    public string? UpstreamModel { get; init; }

    /// <summary>Upstream attempts made, failovers included; 0 for a cache hit or a request rejected before routing.</summary>
    public int Attempts { get; init; }

    public bool Streamed { get; init; }

    public bool CacheHit { get; init; }

    /// <summary>The HTTP status the client received (200 for a stream that later failed or was cut short).</summary>
    public int Status { get; init; }

    /// <summary>The OpenAI error code or type that ended the request, when it failed.</summary>
    public string? ErrorType { get; init; }

    /// <summary>The client went away before the response was complete.</summary>
    public bool ClientDisconnected { get; init; }

    public int PromptTokens { get; init; }
    public int CompletionTokens { get; init; }
    public int TotalTokens { get; init; }

    /// <summary>Prompt tokens served from the provider's prompt cache (part of <see cref="PromptTokens"/>).</summary>
    public int CachedTokens { get; init; }

    /// <summary>True when the upstream reported no usage and the gateway estimated the token counts.</summary>
    public bool TokensEstimated { get; init; }

    /// <summary>Cost in USD; null when the model has no price in the pricing file.</summary>
    public decimal? CostUsd { get; init; }

    public double LatencyMs { get; init; }

    /// <summary>Time to the first content chunk, for streams that produced one.</summary>
    public double? TimeToFirstTokenMs { get; init; }

    /// <summary><see cref="UsageOutcomes.Success"/>, <see cref="UsageOutcomes.Error"/> or <see cref="UsageOutcomes.ClientDisconnected"/>.</summary>
    [JsonIgnore]
    public string Outcome => ClientDisconnected ? UsageOutcomes.ClientDisconnected
        : Status >= 400 || ErrorType is not null ? UsageOutcomes.Error
        : UsageOutcomes.Success;

    /// <summary>The idempotency key: request id and start time.</summary>
    [JsonIgnore]
    public (string RequestId, DateTimeOffset Timestamp) Key => (RequestId, Timestamp);

    /// <summary>The timestamp as stores keep it: ISO 8601 UTC with seven fractional digits, so that text order is time order.</summary>
    [JsonIgnore]
    public string TimestampText => FormatTimestamp(Timestamp);

    public static string FormatTimestamp(DateTimeOffset value) =>
        value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", System.Globalization.CultureInfo.InvariantCulture);

    public static DateTimeOffset ParseTimestamp(string value) =>
        DateTimeOffset.ParseExact(value, "yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", System.Globalization.CultureInfo.InvariantCulture,
            System.Globalization.DateTimeStyles.AssumeUniversal | System.Globalization.DateTimeStyles.AdjustToUniversal);
}

public static class UsageOutcomes
{
    public const string Success = "success";
    public const string Error = "error";
    public const string ClientDisconnected = "client_disconnected";
}
