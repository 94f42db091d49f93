using LlmProxy.Caching.Memory;
using LlmProxy.Caching.Redis;
using LlmProxy.Health;
using LlmProxy.Hosting;
using LlmProxy.Pipeline;
using LlmProxy.Telemetry;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace LlmProxy.Caching;

public static class ResponseCacheServiceCollectionExtensions
{
    /// <summary>
    /// Adds the tenant-keyed response cache as a chat pipeline stage, configured from <c>LlmProxy:Cache</c>
    /// (<see cref="ResponseCacheOptions"/>). Caching stays off until configuration enables it. The store is the
    /// in-process memory store unless <c>Store</c> is <c>redis</c>; a host can register its own
    /// <see cref="IResponseCacheStore"/> before calling this to replace both.
    /// </summary>
    public static ILlmProxyBuilder AddResponseCache(this ILlmProxyBuilder builder, Action<ResponseCacheOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddLlmProxyResponseCache(configure);
        return builder;
    }

    /// <inheritdoc cref="AddResponseCache(ILlmProxyBuilder, Action{ResponseCacheOptions}?)"/>
    public static IServiceCollection AddLlmProxyResponseCache(this IServiceCollection services, Action<ResponseCacheOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);

        var options = services.AddOptions<ResponseCacheOptions>().BindConfiguration(ResponseCacheOptions.SectionName).ValidateOnStart();
        if (configure is not null)
        {
            options.Configure(configure);
        }
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ResponseCacheOptions>, ResponseCacheOptionsValidator>());

        services.AddMetrics();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<GatewayMetrics>();
        services.TryAddSingleton<ResponseCacheMetrics>();
        services.TryAddSingleton<ResponseCachePolicyProvider>();
        services.TryAddSingleton<IResponseCacheStore>(CreateStore);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IChatMiddleware, ResponseCacheMiddleware>());

        if (!services.Any(d => d.ServiceType == typeof(ResponseCacheMarker)))
        {
            services.AddSingleton<ResponseCacheMarker>();
            // Degraded, never unhealthy: the gateway answers without its cache when the store is down.
            services.AddHealthChecks().AddCheck<ResponseCacheHealthCheck>("response-cache", HealthStatus.Degraded, [HealthEndpoints.ReadinessTag]);
        }
        return services;
    }

    private static IResponseCacheStore CreateStore(IServiceProvider services)
    {
        var options = services.GetRequiredService<IOptions<ResponseCacheOptions>>().Value;
        return string.Equals(options.Store, ResponseCacheStores.Redis, StringComparison.OrdinalIgnoreCase)
            ? ActivatorUtilities.CreateInstance<RedisResponseCacheStore>(services)
            : ActivatorUtilities.CreateInstance<MemoryResponseCacheStore>(services);
    }

    /// <summary>Marks the collection as having the cache, so that a second call does not register the health check twice.</summary>
    private sealed class ResponseCacheMarker;
}
