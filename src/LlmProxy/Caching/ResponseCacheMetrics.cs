using System.Diagnostics;
using System.Diagnostics.Metrics;
using LlmProxy.Caching.Memory;
using LlmProxy.Caching.Redis;

namespace LlmProxy.Caching;

/// <summary>
/// The cache's instruments on meter <c>LlmProxy</c>:
/// <list type="bullet">
/// <item><c>llmproxy.cache.requests</c> (counter): cacheable requests by <c>tenant</c>, <c>model</c> and <c>result</c> (hit, miss, bypass).</item>
/// <item><c>llmproxy.cache.store.errors</c> (counter): failed store operations by <c>store</c> and <c>operation</c> (get, set).</item>
/// <item><c>llmproxy.cache.store.duration</c> (histogram, seconds): store operation time by <c>store</c> and <c>operation</c>.</item>
/// </list>
/// </summary>
internal sealed class ResponseCacheMetrics
{
    public const string MeterName = "LlmProxy";

    private readonly Counter<long> _requests;
    private readonly Counter<long> _storeErrors;
    private readonly Histogram<double> _storeDuration;

    public ResponseCacheMetrics(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        var meter = meterFactory.Create(MeterName);
        _requests = meter.CreateCounter<long>("llmproxy.cache.requests", "{request}",
            "Chat completion requests the response cache applied to, by result: hit, miss or bypass.");
        _storeErrors = meter.CreateCounter<long>("llmproxy.cache.store.errors", "{error}",
            "Response cache store operations that failed; the request went on as a miss.");
        _storeDuration = meter.CreateHistogram<double>("llmproxy.cache.store.duration", "s",
            "Time taken by response cache store operations.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1] });
    }

    public void Request(string tenant, string model, string result)
    {
        if (_requests.Enabled)
        {
            _requests.Add(1, new TagList { { "tenant", tenant }, { "model", model }, { "result", result } });
        }
    }

    public void StoreError(string store, string operation)
    {
        if (_storeErrors.Enabled)
        {
            _storeErrors.Add(1, new TagList { { "store", store }, { "operation", operation } });
        }
    }

    public bool StoreDurationEnabled => _storeDuration.Enabled;

    public void StoreDuration(string store, string operation, TimeSpan elapsed) =>
        _storeDuration.Record(elapsed.TotalSeconds, new TagList { { "store", store }, { "operation", operation } });

    /// <summary>The <c>store</c> tag of a store: <c>memory</c>, <c>redis</c>, or the type name of a custom store.</summary>
    public static string StoreName(IResponseCacheStore store) => store switch
    {
        MemoryResponseCacheStore => ResponseCacheStores.Memory,
        RedisResponseCacheStore => ResponseCacheStores.Redis,
        _ => store.GetType().Name,
    };
}
