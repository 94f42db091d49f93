using System.Text.Json;
using LlmProxy.Configuration;
using LlmProxy.Forwarding;
using LlmProxy.OpenAi;
using LlmProxy.Pipeline;
using LlmProxy.Routing;
using Microsoft.Extensions.Options;

namespace LlmProxy.Metering;

/// <summary>Turns what the gateway knows at the end of a chat request into a <see cref="UsageRecord"/> with tokens and cost.</summary>
internal sealed class UsageRecordFactory(PriceTableProvider prices, GatewayConfigurationProvider configuration, IOptions<MeteringOptions> options,
    OpenAiTokenizers tokenizers)
{
    /// <summary>Header naming the calling application or agent; OpenAI's <c>user</c> field is used when it is absent.</summary>
    public const string AgentHeader = "x-llmproxy-agent";

    private readonly int _maxAgentLength = options.Value.MaxAgentLength;

    private static readonly object RecordKey = new();

    /// <summary>
    /// The request's record, built once: both the ledger and the spend budgets (through <see cref="UsageCostSource"/>)
    /// ask for it at the end of the request, and they must agree on its cost.
    /// </summary>
    public UsageRecord GetOrCreate(ChatRequestCompletion completion)
    {
        ArgumentNullException.ThrowIfNull(completion);
        var items = completion.HttpContext.Items;
        if (items.TryGetValue(RecordKey, out var existing) && existing is UsageRecord record)
        {
            return record;
        }
        record = Create(completion);
        items[RecordKey] = record;
        return record;
    }

    public UsageRecord Create(ChatRequestCompletion completion)
    {
        ArgumentNullException.ThrowIfNull(completion);
        var http = completion.HttpContext;
        var chat = completion.Chat;
        var deployment = chat?.ServedBy ?? ServingDeployment(http);
        var cacheHit = chat?.CacheHit ?? false;
        var disconnected = completion.ClientDisconnected;

        // A cache hit costs nothing upstream: whatever usage the cached answer carried is not this request's.
        var usage = cacheHit ? null : chat?.Usage;
        if (!cacheHit && usage is null && chat is not null && ReachedUpstream(chat, http, disconnected))
        {
            usage = Estimate(chat, http.Features.Get<ResponseUsageObserver>(), deployment);
        }

        var prompt = usage?.PromptTokens ?? 0;
        var completionTokens = usage?.CompletionTokens ?? 0;
        var cached = Math.Min(usage?.CachedPromptTokens ?? 0, prompt);
        var total = usage is null ? 0 : Math.Max(usage.TotalTokens, prompt + completionTokens);

        decimal? cost = 0m;
        if (total > 0)
        {
            var price = prices.Find(deployment?.ProviderName, deployment?.UpstreamModel, completion.RequestedModel, completion.StartedAt);
            cost = price is null ? null : CostCalculator.Compute(price, prompt, completionTokens, cached);
        }

        return new UsageRecord
        {
            RequestId = http.TraceIdentifier,
            Timestamp = completion.StartedAt.ToUniversalTime(),
            Tenant = completion.Identity.Tenant.Name,
            KeyId = completion.Identity.KeyId,
            Agent = Agent(http, chat?.Request),
            RequestedModel = completion.RequestedModel,
            Provider = deployment?.ProviderName,
            Deployment = deployment?.Id,
            UpstreamModel = deployment?.UpstreamModel,
            Attempts = chat?.Attempts ?? 0,
            Streamed = chat?.Request.Stream ?? false,
            CacheHit = cacheHit,
            Status = completion.StatusCode,
            ErrorType = chat?.ErrorCode ?? (disconnected ? "client_disconnected" : ErrorFromStatus(completion.StatusCode)),
            ClientDisconnected = disconnected,
            PromptTokens = prompt,
            CompletionTokens = completionTokens,
            TotalTokens = total,
            CachedTokens = cached,
            TokensEstimated = usage?.Estimated ?? false,
            CostUsd = cost,
            LatencyMs = Math.Round(completion.Elapsed.TotalMilliseconds, 3),
            TimeToFirstTokenMs = chat?.TimeToFirstToken is { } ttft ? Math.Round(ttft.TotalMilliseconds, 3) : null,
        };
    }

    /// <summary>
    /// Whether the upstream may have spent tokens on the request although it reported none: it started answering (a stream
    /// that was cut short, a body without usage), or the client left while an upstream attempt was under way.
    /// </summary>
    private static bool ReachedUpstream(ChatContext chat, HttpContext http, bool disconnected) =>
        chat.Attempts > 0 && ((http.Response.HasStarted && http.Response.StatusCode is >= 200 and < 300) || disconnected);

    /// <summary>Prompt and completion tokens the upstream did not report: counted with the model's tokenizer for OpenAI models, else estimated cheaply.</summary>
    private TokenUsage Estimate(ChatContext chat, ResponseUsageObserver? observer, Deployment? deployment)
    {
        var tokenizer = tokenizers.ForModel(deployment?.UpstreamModel);
        var prompt = UsageEstimator.EstimatePrompt(chat.Request, tokenizer);
        var completion = observer?.EstimateCompletionTokens(tokenizer) ?? 0;
        return new TokenUsage(prompt, completion, prompt + completion, null, Estimated: true);
    }

    /// <summary>The deployment named in the response headers, for requests that ended without <see cref="ChatContext.ServedBy"/> (the client left mid-stream).</summary>
    private Deployment? ServingDeployment(HttpContext http) =>
        http.Response.Headers[GatewayHeaders.Deployment].ToString() is { Length: > 0 } id
        && configuration.Current.Deployments.TryGetValue(id, out var deployment)
            ? deployment
            : null;

    internal string? Agent(HttpContext http, ChatRequest? request)
    {
        var header = http.Request.Headers[AgentHeader].ToString();
        var value = header.Length > 0 ? header
            : request?.Body["user"] is System.Text.Json.Nodes.JsonValue user && user.GetValueKind() == JsonValueKind.String ? user.GetValue<string>()
            : null;
        return Sanitize(value, _maxAgentLength);
    }

    internal static string? Sanitize(string? value, int maxLength)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }
        var cleaned = new string(value.Trim().Where(c => !char.IsControl(c)).ToArray());
        if (cleaned.Length > maxLength)
        {
            cleaned = cleaned[..maxLength];
            if (char.IsHighSurrogate(cleaned[^1]))
            {
                cleaned = cleaned[..^1];
            }
        }
        return cleaned.Length == 0 ? null : cleaned;
    }

    private static string? ErrorFromStatus(int status) => status switch
    {
        < 400 => null,
        StatusCodes.Status400BadRequest => GatewayErrors.InvalidRequest,
        StatusCodes.Status401Unauthorized => "invalid_api_key",
        StatusCodes.Status403Forbidden => "permission_denied",
        StatusCodes.Status404NotFound => "model_not_found",
        StatusCodes.Status413PayloadTooLarge => "request_too_large",
        StatusCodes.Status415UnsupportedMediaType => "unsupported_media_type",
        StatusCodes.Status429TooManyRequests => "rate_limit_exceeded",
        StatusCodes.Status500InternalServerError => "internal_error",
        _ => "http_" + status.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}

/// <summary>The completion listener of the metering feature: builds the record and hands it to the ledger, off the request path.</summary>
internal sealed partial class UsageRecorder(UsageRecordFactory factory, UsageLedger ledger, MeteringMetrics metrics,
    GatewayConfigurationProvider configuration, ILogger<UsageRecorder> logger) : IChatRequestCompletionListener
{
    public void OnCompleted(ChatRequestCompletion completion)
    {
        try
        {
            var record = factory.GetOrCreate(completion);
            if (record.CostUsd is { } cost)
            {
                metrics.Cost(record.Tenant, Telemetry.MetricLabels.Model(record.RequestedModel, configuration.Current.Routes), record.Provider, cost);
            }
            ledger.Append(record);
        }
        catch (Exception ex)
        {
            // Metering must never fail a request; the record is lost and says so in the log.
            metrics.Dropped(1);
            LogRecordFailed(logger, completion.HttpContext.TraceIdentifier, ex);
        }
    }

    [LoggerMessage(EventId = 7101, Level = LogLevel.Error, Message = "Metering: could not record usage of request {RequestId}")]
    private static partial void LogRecordFailed(ILogger logger, string requestId, Exception exception);
}
