namespace LlmProxy.RateLimiting;

/// <summary>
/// Builds the limiter when the host starts rather than on the first request: invalid limits stop startup with every
/// problem listed, and the Redis store starts connecting (in the background; startup does not wait for Redis).
/// </summary>
internal sealed class RateLimitingStartup(IServiceProvider services) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        _ = services.GetRequiredService<RateLimitPolicyProvider>();
        if (services.GetRequiredService<IRateLimitStore>() is FailoverRateLimitStore store)
        {
            store.WarmUp();
        }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
