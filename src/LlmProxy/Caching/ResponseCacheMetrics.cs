using LlmProxy.Caching.Memory;
using LlmProxy.Caching.Redis;
using LlmProxy.Telemetry;

namespace LlmProxy.Caching;

/// <summary>
/// What the cache reports, on the gateway's <c>LlmProxy</c> meter. The instruments themselves are defined once, in
/// <see cref="GatewayMetrics"/>, so that the cache and the exporter agree on their names, units and buckets:
/// <list type="bullet">
/// <item><c>llmproxy.cache.requests</c> (counter): cacheable requests by <c>tenant</c>, <c>model</c> and <c>result</c> (hit, miss, bypass).</item>
/// <item><c>llmproxy.cache.store.errors</c> (counter): failed store operations by <c>store</c> and <c>operation</c> (get, set, read).</item>
/// <item><c>llmproxy.cache.store.duration</c> (histogram, seconds): store operation time by <c>store</c> and <c>operation</c>.</item>
/// </list>
/// </summary>
internal sealed class ResponseCacheMetrics(GatewayMetrics metrics)
{
    public void Hit(string tenant, string model) => metrics.RecordCacheRequest(tenant, model, CacheResult.Hit);

    public void Miss(string tenant, string model) => metrics.RecordCacheRequest(tenant, model, CacheResult.Miss);

    public void Bypass(string tenant, string model) => metrics.RecordCacheRequest(tenant, model, CacheResult.Bypass);

    public void StoreError(string store, string operation) => metrics.RecordCacheStoreError(store, operation);

    public void StoreDuration(string store, string operation, TimeSpan elapsed) => metrics.RecordCacheStoreDuration(store, operation, elapsed);

    /// <summary>The <c>store</c> tag of a store: <c>memory</c>, <c>redis</c>, or the type name of a custom store.</summary>
    public static string StoreName(IResponseCacheStore store) => store switch
    {
        MemoryResponseCacheStore => ResponseCacheStores.Memory,
        RedisResponseCacheStore => ResponseCacheStores.Redis,
        _ => store.GetType().Name,
    };
}
