using LlmProxy.Caching.Redis;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace LlmProxy.Caching;

/// <summary>
/// Readiness contribution of the response cache. The cache is optional: an unreachable Redis reports
/// <see cref="HealthStatus.Degraded"/> (the gateway stays in the load balancer and serves every request as a
/// miss), never unhealthy. The memory store is always healthy.
/// </summary>
internal sealed class ResponseCacheHealthCheck(IResponseCacheStore store) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (store is not RedisResponseCacheStore redis)
        {
            return HealthCheckResult.Healthy("response cache store: " + ResponseCacheMetrics.StoreName(store));
        }
        try
        {
            var latency = await redis.PingAsync(cancellationToken);
            return redis.Backoff.IsOpen
                ? HealthCheckResult.Degraded("response cache Redis answers again; requests resume using it after the current backoff")
                : HealthCheckResult.Healthy($"response cache Redis reachable ({latency.TotalMilliseconds:F1} ms)");
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Degraded("response cache Redis unreachable; requests are served without the cache (" + ex.GetType().Name + ")");
        }
    }
}
