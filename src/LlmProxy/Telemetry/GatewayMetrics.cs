using System.Diagnostics;
using System.Diagnostics.Metrics;
using LlmProxy.Pipeline;
using LlmProxy.Routing;

namespace LlmProxy.Telemetry;

/// <summary>
/// The gateway's instruments, on the <c>LlmProxy</c> meter. Instrument names are OpenTelemetry-style (dotted, with
/// units); the <c>gen_ai.*</c> ones follow the OpenTelemetry GenAI semantic conventions. Every recording method
/// checks <see cref="Instrument.Enabled"/> first, so with no listener a call costs a field read.
/// <para>
/// Label values must have bounded cardinality: tenants, models, deployments and providers come from configuration
/// (map a client's model name with <see cref="MetricLabels.Model"/>), outcomes from fixed sets. Never request ids,
/// user ids or free text.
/// </para>
/// </summary>
internal sealed class GatewayMetrics
{
    public const string MeterName = "LlmProxy";

    /// <summary>The GenAI operation the gateway serves (<c>gen_ai.operation.name</c>).</summary>
    public const string ChatOperation = "chat";

    private readonly Counter<long> _requests;
    private readonly Histogram<double> _requestDuration;
    private readonly UpDownCounter<long> _requestsInFlight;
    private readonly UpDownCounter<long> _streamsInFlight;
    private readonly Histogram<long> _tokenUsage;
    private readonly Histogram<double> _timeToFirstToken;
    private readonly Histogram<double> _operationDuration;
    private readonly Histogram<double> _upstreamDuration;
    private readonly Counter<long> _upstreamAttempts;
    private readonly Counter<long> _failovers;
    private readonly Counter<long> _cacheRequests;
    private readonly Counter<long> _cacheStoreErrors;
    private readonly Histogram<double> _cacheStoreDuration;
    private readonly Counter<double> _cost;
    private readonly Counter<long> _rateLimitRejections;
    private readonly Counter<long> _usageLedgerSpilled;
    private readonly Counter<long> _usageLedgerWriteErrors;

    private Func<IEnumerable<(string Deployment, int State)>>? _breakerStates;
    private Func<long>? _usageLedgerQueueDepth;

    public GatewayMetrics(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        var meter = meterFactory.Create(MeterName);

        _requests = meter.CreateCounter<long>("llmproxy.requests", "{request}",
            "Chat completion requests answered, by tenant, model, serving provider and deployment, status class and whether streamed.");
        _requestDuration = meter.CreateHistogram("llmproxy.request.duration", "s",
            "Time from the start of a chat completion request to the end of its response, as the client sees it.", tags: null,
            new InstrumentAdvice<double> { HistogramBucketBoundaries = HistogramBuckets.Seconds });
        _requestsInFlight = meter.CreateUpDownCounter<long>("llmproxy.requests.in_flight", "{request}",
            "Chat completion requests being served.");
        _streamsInFlight = meter.CreateUpDownCounter<long>("llmproxy.streams.in_flight", "{request}",
            "Streamed chat completion requests being served.");

        _tokenUsage = meter.CreateHistogram("gen_ai.client.token.usage", "{token}",
            "Tokens used per chat completion as reported by the provider, by token type (input/output).", tags: null,
            new InstrumentAdvice<long> { HistogramBucketBoundaries = HistogramBuckets.GenAiTokenUsage });
        _timeToFirstToken = meter.CreateHistogram("gen_ai.server.time_to_first_token", "s",
            "Time from the start of a streamed request to the first content chunk sent to the client.", tags: null,
            new InstrumentAdvice<double> { HistogramBucketBoundaries = HistogramBuckets.GenAiTimeToFirstToken });
        _operationDuration = meter.CreateHistogram("gen_ai.client.operation.duration", "s",
            "Duration of each call the gateway makes to a provider (one per upstream attempt), with error.type when it failed.", tags: null,
            new InstrumentAdvice<double> { HistogramBucketBoundaries = HistogramBuckets.GenAiOperationDuration });

        _upstreamDuration = meter.CreateHistogram("llmproxy.upstream.duration", "s",
            "Duration of each upstream attempt, by deployment and outcome; a streamed attempt lasts until its stream ends.", tags: null,
            new InstrumentAdvice<double> { HistogramBucketBoundaries = HistogramBuckets.Seconds });
        _upstreamAttempts = meter.CreateCounter<long>("llmproxy.upstream.attempts", "{attempt}",
            "Upstream attempts, by deployment and outcome.");
        _failovers = meter.CreateCounter<long>("llmproxy.failovers", "{failover}",
            "Requests moved to the next deployment after a failed attempt, by model, the deployment that failed and why.");
        meter.CreateObservableGauge("llmproxy.deployment.breaker_state", ObserveBreakerStates, "{state}",
            "Circuit breaker state of each deployment: 0 closed, 1 half-open, 2 open.");

        _cacheRequests = meter.CreateCounter<long>("llmproxy.cache.requests", "{request}",
            "Response cache lookups, by tenant, model and result (hit, miss, bypass).");
        _cacheStoreErrors = meter.CreateCounter<long>("llmproxy.cache.store.errors", "{error}",
            "Cache store operations that failed (the request went on as a miss), by store and operation.");
        _cacheStoreDuration = meter.CreateHistogram("llmproxy.cache.store.duration", "s",
            "Duration of cache store operations, by store and operation.", tags: null,
            new InstrumentAdvice<double> { HistogramBucketBoundaries = HistogramBuckets.Seconds });

        // "{USD}": an annotation, so the exporter adds no unit word and the Prometheus name stays llmproxy_cost_usd_total.
        _cost = meter.CreateCounter<double>("llmproxy.cost.usd", "{USD}",
            "Estimated cost of the tokens used, in US dollars, by tenant, model and provider.");
        _rateLimitRejections = meter.CreateCounter<long>("llmproxy.ratelimit.rejections", "{request}",
            "Chat completion requests refused by a rate limit or budget, by tenant and kind of limit.");

        meter.CreateObservableGauge("llmproxy.usage_ledger.queue_depth", ObserveUsageLedgerQueueDepth, "{record}",
            "Usage records waiting to be written to the usage ledger.");
        _usageLedgerSpilled = meter.CreateCounter<long>("llmproxy.usage_ledger.spilled", "{record}",
            "Usage records spilled to the local fallback file because the ledger queue was full or the store unavailable.");
        _usageLedgerWriteErrors = meter.CreateCounter<long>("llmproxy.usage_ledger.write_errors", "{error}",
            "Failed writes to the usage ledger store, by store.");
    }

    /// <summary>Counts a request as in flight until the returned scope is disposed: <c>using var inFlight = metrics.TrackRequestInFlight();</c></summary>
    public InFlightScope TrackRequestInFlight() => InFlightScope.Start(_requestsInFlight);

    /// <summary>Counts a streamed request as in flight until the returned scope is disposed.</summary>
    public InFlightScope TrackStreamInFlight() => InFlightScope.Start(_streamsInFlight);

    /// <summary>
    /// Records a finished chat completion: the request count and duration, and (when a provider served it, not the
    /// cache) its token usage and, for streams, the time to first token. Call once per request, at its end.
    /// </summary>
    /// <param name="statusCode">The response status (<c>HttpContext.Response.StatusCode</c>); see <see cref="RequestOutcome.From"/>.</param>
    public void RecordRequestCompleted(ChatContext chat, int statusCode) => RecordRequestCompleted(RequestOutcome.From(chat, statusCode));

    /// <summary>Records a finished chat completion, including one rejected before it had a <see cref="ChatContext"/>.</summary>
    public void RecordRequestCompleted(in RequestOutcome outcome)
    {
        var provider = outcome.Provider ?? MetricLabels.None;
        var statusClass = MetricLabels.StatusClass(outcome.StatusCode);
        var stream = MetricLabels.Bool(outcome.Stream);
        if (_requests.Enabled)
        {
            // Tags are listed in ordinal key order throughout: the SDK sorts them, and sorted input costs least.
            _requests.Add(1, new TagList
            {
                { "deployment", outcome.Deployment ?? MetricLabels.None },
                { "model", outcome.Model },
                { "provider", provider },
                { "status_class", statusClass },
                { "stream", stream },
                { "tenant", outcome.Tenant },
            });
        }
        if (_requestDuration.Enabled)
        {
            _requestDuration.Record(outcome.Duration.TotalSeconds, new TagList
            {
                { "model", outcome.Model },
                { "provider", provider },
                { "status_class", statusClass },
                { "stream", stream },
                { "tenant", outcome.Tenant },
            });
        }

        if (outcome.CacheHit || outcome.Provider is null)
        {
            return; // No provider call produced this response: nothing to say in GenAI terms.
        }
        var genAiProvider = outcome.GenAiProvider ?? outcome.Provider;
        if (outcome.Usage is { } usage && _tokenUsage.Enabled)
        {
            _tokenUsage.Record(usage.PromptTokens, GenAiTags(outcome.Tenant, outcome.Model, genAiProvider, tokenType: "input"));
            _tokenUsage.Record(usage.CompletionTokens, GenAiTags(outcome.Tenant, outcome.Model, genAiProvider, tokenType: "output"));
        }
        if (outcome.Stream && outcome.TimeToFirstToken is { } ttft && _timeToFirstToken.Enabled)
        {
            _timeToFirstToken.Record(ttft.TotalSeconds, GenAiTags(outcome.Tenant, outcome.Model, genAiProvider));
        }
    }

    /// <summary>
    /// Records one upstream attempt: <c>llmproxy.upstream.attempts</c>, <c>llmproxy.upstream.duration</c> and
    /// <c>gen_ai.client.operation.duration</c> (with <c>error.type</c> = the outcome when it is not a success).
    /// </summary>
    /// <param name="outcome">One of <see cref="UpstreamOutcomes"/>; <see cref="UpstreamOutcomes.FromFailure"/> maps a failure.</param>
    public void RecordUpstreamAttempt(Deployment deployment, string outcome, TimeSpan duration)
    {
        ArgumentNullException.ThrowIfNull(deployment);
        RecordUpstreamAttempt(deployment.Id, deployment.Provider.GenAiProviderName, deployment.ModelName, outcome, duration);
    }

    /// <param name="genAiProvider">The provider's <see cref="Providers.IChatProvider.GenAiProviderName"/>.</param>
    /// <param name="model">The client-facing model the deployment serves.</param>
    public void RecordUpstreamAttempt(string deployment, string genAiProvider, string model, string outcome, TimeSpan duration)
    {
        if (_upstreamAttempts.Enabled)
        {
            _upstreamAttempts.Add(1, new TagList { { "deployment", deployment }, { "outcome", outcome } });
        }
        if (_upstreamDuration.Enabled)
        {
            _upstreamDuration.Record(duration.TotalSeconds, new TagList { { "deployment", deployment }, { "outcome", outcome } });
        }
        if (_operationDuration.Enabled)
        {
            var tags = new TagList();
            if (outcome != UpstreamOutcomes.Success)
            {
                tags.Add("error.type", outcome);
            }
            tags.Add("gen_ai.operation.name", ChatOperation);
            tags.Add("gen_ai.provider.name", genAiProvider);
            tags.Add("gen_ai.request.model", model);
            _operationDuration.Record(duration.TotalSeconds, tags);
        }
    }

    /// <summary>Records that a request moved on from <paramref name="fromDeployment"/> to the next candidate.</summary>
    /// <param name="reason">One of <see cref="UpstreamOutcomes"/>: why the attempt failed.</param>
    public void RecordFailover(string model, string fromDeployment, string reason)
    {
        if (_failovers.Enabled)
        {
            _failovers.Add(1, new TagList { { "from_deployment", fromDeployment }, { "model", model }, { "reason", reason } });
        }
    }

    /// <summary>
    /// Sets where <c>llmproxy.deployment.breaker_state</c> reads from at each scrape: (deployment id, one of
    /// <see cref="BreakerStates"/>). The default is none: the metric has no series. Null removes the source.
    /// </summary>
    public void SetBreakerStateSource(Func<IEnumerable<(string Deployment, int State)>>? source) => Volatile.Write(ref _breakerStates, source);

    public void RecordCacheRequest(string tenant, string model, CacheResult result)
    {
        if (_cacheRequests.Enabled)
        {
            _cacheRequests.Add(1, new TagList { { "model", model }, { "result", CacheResultLabel(result) }, { "tenant", tenant } });
        }
    }

    /// <param name="store">The store kind, e.g. <c>memory</c> or <c>redis</c>.</param>
    /// <param name="operation">The operation, e.g. <c>get</c> or <c>set</c>.</param>
    public void RecordCacheStoreError(string store, string operation)
    {
        if (_cacheStoreErrors.Enabled)
        {
            _cacheStoreErrors.Add(1, new TagList { { "operation", operation }, { "store", store } });
        }
    }

    public void RecordCacheStoreDuration(string store, string operation, TimeSpan duration)
    {
        if (_cacheStoreDuration.Enabled)
        {
            _cacheStoreDuration.Record(duration.TotalSeconds, new TagList { { "operation", operation }, { "store", store } });
        }
    }

    /// <summary>Adds the estimated cost of a request. Zero and negative amounts are ignored.</summary>
    public void RecordCost(string tenant, string model, string provider, decimal usd)
    {
        if (usd > 0 && _cost.Enabled)
        {
            _cost.Add((double)usd, new TagList { { "model", model }, { "provider", provider }, { "tenant", tenant } });
        }
    }

    /// <param name="limit">The kind of limit that refused the request, e.g. <c>requests</c>, <c>tokens</c> or <c>budget_daily</c>.</param>
    public void RecordRateLimitRejection(string tenant, string limit)
    {
        if (_rateLimitRejections.Enabled)
        {
            _rateLimitRejections.Add(1, new TagList { { "limit", limit }, { "tenant", tenant } });
        }
    }

    /// <summary>Sets where <c>llmproxy.usage_ledger.queue_depth</c> reads from at each scrape. The default is none: no series.</summary>
    public void SetUsageLedgerQueueDepthSource(Func<long>? source) => Volatile.Write(ref _usageLedgerQueueDepth, source);

    public void RecordUsageLedgerSpilled(long records = 1)
    {
        if (records > 0 && _usageLedgerSpilled.Enabled)
        {
            _usageLedgerSpilled.Add(records);
        }
    }

    /// <param name="store">The ledger store kind, e.g. <c>sqlite</c> or <c>dynamodb</c>.</param>
    public void RecordUsageLedgerWriteError(string store)
    {
        if (_usageLedgerWriteErrors.Enabled)
        {
            _usageLedgerWriteErrors.Add(1, new TagList { { "store", store } });
        }
    }

    private static TagList GenAiTags(string tenant, string model, string genAiProvider, string? tokenType = null)
    {
        var tags = new TagList
        {
            { "gen_ai.operation.name", ChatOperation },
            { "gen_ai.provider.name", genAiProvider },
            { "gen_ai.request.model", model },
        };
        if (tokenType is not null)
        {
            tags.Add("gen_ai.token.type", tokenType);
        }
        tags.Add("tenant", tenant);
        return tags;
    }

    private static string CacheResultLabel(CacheResult result) => result switch
    {
        CacheResult.Hit => "hit",
        CacheResult.Miss => "miss",
        _ => "bypass",
    };

    private IEnumerable<Measurement<int>> ObserveBreakerStates()
    {
        if (Volatile.Read(ref _breakerStates) is not { } source)
        {
            return [];
        }
        return source().Select(static s => new Measurement<int>(s.State, new KeyValuePair<string, object?>("deployment", s.Deployment)));
    }

    private IEnumerable<Measurement<long>> ObserveUsageLedgerQueueDepth() =>
        Volatile.Read(ref _usageLedgerQueueDepth) is { } source ? [new Measurement<long>(source())] : [];
}

/// <summary>Keeps an up-down counter raised for its lifetime. Disposing it twice lowers it twice: use it with <c>using</c>.</summary>
internal readonly struct InFlightScope : IDisposable
{
    private readonly UpDownCounter<long>? _counter;

    private InFlightScope(UpDownCounter<long> counter) => _counter = counter;

    /// <summary>Raises the counter when it is listened to; the scope then lowers it even if listening stops meanwhile.</summary>
    internal static InFlightScope Start(UpDownCounter<long> counter)
    {
        if (!counter.Enabled)
        {
            return default;
        }
        counter.Add(1);
        return new InFlightScope(counter);
    }

    public void Dispose() => _counter?.Add(-1);
}

/// <summary>What <see cref="GatewayMetrics.RecordRequestCompleted(in RequestOutcome)"/> needs to know about a finished request.</summary>
/// <param name="Tenant">The tenant's configured name.</param>
/// <param name="Model">A configured model name, or <see cref="MetricLabels.UnknownModel"/> (see <see cref="MetricLabels.Model"/>).</param>
/// <param name="Provider">The provider that served the response; null when none did (<c>none</c>), <c>cache</c> for a cache hit.</param>
/// <param name="Deployment">The deployment that served the response; null when none did.</param>
/// <param name="StatusCode">The HTTP status the client got (499 when it went away before any response).</param>
internal readonly record struct RequestOutcome(string Tenant, string Model, string? Provider, string? Deployment, int StatusCode, bool Stream, TimeSpan Duration)
{
    public TokenUsage? Usage { get; init; }
    public TimeSpan? TimeToFirstToken { get; init; }
    public bool CacheHit { get; init; }

    /// <summary>The serving provider's <c>gen_ai.provider.name</c>; <see cref="Provider"/> when not given.</summary>
    public string? GenAiProvider { get; init; }

    /// <summary>Status recorded for a client that disconnected before the response started (nginx's convention).</summary>
    public const int ClientClosedRequest = 499;

    /// <summary>
    /// The outcome of a request that went through the chat pipeline. When the client went away before the response
    /// started, the status is recorded as 499 whatever <paramref name="statusCode"/> says (it would be a default 200).
    /// </summary>
    public static RequestOutcome From(ChatContext chat, int statusCode)
    {
        ArgumentNullException.ThrowIfNull(chat);
        var http = chat.HttpContext;
        if (!http.Response.HasStarted && http.RequestAborted.IsCancellationRequested)
        {
            statusCode = ClientClosedRequest;
        }
        var served = chat.ServedBy;
        var provider = served?.ProviderName ?? (chat.CacheHit ? MetricLabels.Cache : null);
        var deployment = served?.Id ?? (chat.CacheHit ? MetricLabels.Cache : null);
        return new RequestOutcome(chat.Identity.Tenant.Name, chat.Route.Name, provider, deployment, statusCode, chat.Request.Stream, chat.Elapsed)
        {
            Usage = chat.Usage,
            TimeToFirstToken = chat.TimeToFirstToken,
            CacheHit = chat.CacheHit,
            GenAiProvider = served?.Provider.GenAiProviderName,
        };
    }
}
