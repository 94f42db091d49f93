using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace LlmProxy.RateLimiting;

/// <summary>
/// Readiness contribution of the rate limiter. With the Redis store a replica is not ready until its first Redis round
/// trip is over (at most <see cref="RedisRateLimitOptions.ConnectTimeout"/> plus the connect): a load balancer that
/// waits for readiness then never sends a just-started replica requests that would time out into the failure mode.
/// Afterwards an unreachable Redis is <see cref="HealthStatus.Degraded"/>, not unhealthy: every replica shares that
/// Redis, so taking replicas out of the load balancer would not help, and the failure mode already answers.
/// </summary>
internal sealed class RateLimitStoreHealthCheck(IRateLimitStore store) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (store is not FailoverRateLimitStore shared)
        {
            return Task.FromResult(HealthCheckResult.Healthy("rate limit store: local"));
        }
        var mode = shared.FailsClosed ? RateLimitFailureModes.Closed : RateLimitFailureModes.Local;
        return Task.FromResult(shared.IsWarmingUp
            ? HealthCheckResult.Unhealthy("rate limit store: connecting to Redis")
            : shared.IsDegraded
                ? HealthCheckResult.Degraded($"rate limit store: Redis unavailable, failure mode '{mode}'")
                : HealthCheckResult.Healthy("rate limit store: Redis"));
    }
}
