using System.Globalization;
using System.Text.Json.Serialization;

namespace LlmProxy.Metering;

/// <summary>Answer of <c>GET /v1/usage</c> and <c>GET /admin/usage</c>: totals over the range and, when grouped, one entry per group.</summary>
internal sealed record UsageReport(
    string Object,
    string? Tenant,
    DateTimeOffset From,
    DateTimeOffset To,
    string? Model,
    string? Agent,
    string? GroupBy,
    UsageSummary Totals,
    IReadOnlyList<UsageSummary> Data);

/// <summary>Totals of a set of usage records.</summary>
internal sealed record UsageSummary
{
    /// <summary>The group's value (model, provider, agent, day...); absent on the overall totals.</summary>
    public string? Group { get; init; }

    public long Requests { get; init; }
    public long Succeeded { get; init; }
    public long Failed { get; init; }
    public long ClientDisconnected { get; init; }
    public long CacheHits { get; init; }

    /// <summary>Succeeded / requests.</summary>
    public double SuccessRate { get; init; }

    /// <summary>Cache hits / requests.</summary>
    public double CacheHitRate { get; init; }

    public long PromptTokens { get; init; }
    public long CompletionTokens { get; init; }
    public long TotalTokens { get; init; }
    public long CachedTokens { get; init; }

    /// <summary>Requests whose tokens the gateway estimated (the upstream reported none).</summary>
    public long EstimatedRequests { get; init; }

    /// <summary>Requests with tokens but no price: their cost is not in <see cref="CostUsd"/>.</summary>
    public long UnpricedRequests { get; init; }

    public decimal CostUsd { get; init; }
    public double AverageLatencyMs { get; init; }
    public double AverageTokensPerRequest { get; init; }
    public decimal AverageCostUsdPerRequest { get; init; }
}

/// <summary>Adds records up into a <see cref="UsageSummary"/>. Cost sums are exact (decimal).</summary>
internal sealed class UsageAccumulator
{
    private long _requests, _succeeded, _failed, _disconnected, _cacheHits, _estimated, _unpriced;
    private long _prompt, _completion, _total, _cached;
    private decimal _cost;
    private double _latency;

    public void Add(UsageRecord record)
    {
        _requests++;
        switch (record.Outcome)
        {
            case UsageOutcomes.Success:
                _succeeded++;
                break;
            case UsageOutcomes.ClientDisconnected:
                _disconnected++;
                break;
            default:
                _failed++;
                break;
        }
        if (record.CacheHit)
        {
            _cacheHits++;
        }
        if (record.TokensEstimated)
        {
            _estimated++;
        }
        _prompt += record.PromptTokens;
        _completion += record.CompletionTokens;
        _total += record.TotalTokens;
        _cached += record.CachedTokens;
        if (record.CostUsd is { } cost)
        {
            _cost += cost;
        }
        else if (record.TotalTokens > 0)
        {
            _unpriced++;
        }
        _latency += record.LatencyMs;
    }

    public long Requests => _requests;
    public long PromptTokens => _prompt;
    public long CompletionTokens => _completion;
    public long CachedTokens => _cached;
    public decimal CostUsd => _cost;
    public long UnpricedRequests => _unpriced;

    public UsageSummary ToSummary(string? group = null) => new()
    {
        Group = group,
        Requests = _requests,
        Succeeded = _succeeded,
        Failed = _failed,
        ClientDisconnected = _disconnected,
        CacheHits = _cacheHits,
        SuccessRate = Ratio(_succeeded, _requests),
        CacheHitRate = Ratio(_cacheHits, _requests),
        PromptTokens = _prompt,
        CompletionTokens = _completion,
        TotalTokens = _total,
        CachedTokens = _cached,
        EstimatedRequests = _estimated,
        UnpricedRequests = _unpriced,
        CostUsd = CostCalculator.Normalize(_cost),
        AverageLatencyMs = _requests == 0 ? 0 : Math.Round(_latency / _requests, 3),
        AverageTokensPerRequest = _requests == 0 ? 0 : Math.Round((double)_total / _requests, 3),
        AverageCostUsdPerRequest = _requests == 0 ? 0 : CostCalculator.Normalize(Math.Round(_cost / _requests, 10)),
    };

    private static double Ratio(long part, long whole) => whole == 0 ? 0 : Math.Round((double)part / whole, 6);
}

/// <summary>The dimensions usage can be grouped by (<c>group_by</c>).</summary>
internal static class UsageGroupings
{
    public const string Model = "model";
    public const string Provider = "provider";
    public const string Deployment = "deployment";
    public const string Agent = "agent";
    public const string Key = "key";
    public const string Day = "day";
    public const string Tenant = "tenant";

    public static readonly string[] ForTenants = [Model, Provider, Deployment, Agent, Key, Day];
    public static readonly string[] ForAdmins = [.. ForTenants, Tenant];

    /// <summary>
    /// The group of a record. Cache hits have no provider or deployment: they group as <c>"cache"</c>; other records with no
    /// value (a request that failed before routing has no provider) go to <c>"none"</c>.
    /// </summary>
    public static string GroupOf(UsageRecord record, string groupBy) => groupBy switch
    {
        Model => record.RequestedModel,
        Provider => record.Provider ?? (record.CacheHit ? "cache" : null),
        Deployment => record.Deployment ?? (record.CacheHit ? "cache" : null),
        Agent => record.Agent,
        Key => record.KeyId,
        Day => record.Timestamp.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
        Tenant => record.Tenant,
        _ => throw new ArgumentOutOfRangeException(nameof(groupBy), groupBy, null),
    } ?? "none";
}

/// <summary>Answer of <c>GET /v1/usage/estimate</c>: the month ahead at the pace of the observed range, and on other models.</summary>
internal sealed record UsageEstimate(
    string Object,
    string? Tenant,
    DateTimeOffset From,
    DateTimeOffset To,
    double BasisDays,
    int MonthDays,
    UsageProjection Observed,
    UsageProjection Monthly,
    IReadOnlyList<ModelCost> Alternatives,
    string? Cheapest);

internal sealed record UsageProjection(long Requests, long PromptTokens, long CompletionTokens, long CachedTokens, decimal CostUsd, long UnpricedRequests);

/// <summary>The cost of a token mix on one model.</summary>
internal sealed record ModelCost(
    string Model,
    string Provider,
    decimal InputPerMillion,
    decimal OutputPerMillion,
    decimal? CachedInputPerMillion,
    [property: JsonConverter(typeof(DateOnlyJsonConverter))] DateOnly EffectiveDate,
    decimal CostUsd);

/// <summary>Answer of <c>GET /v1/pricing/compare</c>.</summary>
internal sealed record PriceComparison(string Object, long InputTokens, long OutputTokens, long CachedTokens, IReadOnlyList<ModelCost> Data, string? Cheapest);

/// <summary>Answer of <c>GET /v1/pricing</c>.</summary>
internal sealed record PriceList(string Object, string Currency, string Unit, IReadOnlyList<PriceListEntry> Data);

internal sealed record PriceListEntry(
    string Provider,
    string Model,
    IReadOnlyList<string> Aliases,
    decimal InputPerMillion,
    decimal? CachedInputPerMillion,
    decimal OutputPerMillion,
    [property: JsonConverter(typeof(DateOnlyJsonConverter))] DateOnly EffectiveDate,
    bool Current);

internal sealed class DateOnlyJsonConverter : JsonConverter<DateOnly>
{
    public override DateOnly Read(ref System.Text.Json.Utf8JsonReader reader, Type typeToConvert, System.Text.Json.JsonSerializerOptions options) =>
        DateOnly.ParseExact(reader.GetString()!, "yyyy-MM-dd", CultureInfo.InvariantCulture);

    public override void Write(System.Text.Json.Utf8JsonWriter writer, DateOnly value, System.Text.Json.JsonSerializerOptions options) =>
        writer.WriteStringValue(value.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
}
