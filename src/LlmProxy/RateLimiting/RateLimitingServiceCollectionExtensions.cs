using LlmProxy.Health;
using LlmProxy.Hosting;
using LlmProxy.Pipeline;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace LlmProxy.RateLimiting;

public static class RateLimitingServiceCollectionExtensions
{
    /// <inheritdoc cref="AddLlmProxyRateLimiting(IServiceCollection, Action{RateLimitOptions}?)"/>
    public static ILlmProxyBuilder AddRateLimiting(this ILlmProxyBuilder builder, Action<RateLimitOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddLlmProxyRateLimiting(configure);
        return builder;
    }

    /// <summary>
    /// Adds per-tenant rate limits and budgets, configured from <c>LlmProxy:RateLimits</c> (see
    /// <see cref="RateLimitOptions"/>), optionally adjusted by <paramref name="configure"/>. Replace
    /// <see cref="IRequestCostSource"/> to feed the budgets.
    /// <para>
    /// Chat stages run in registration order: call this after telemetry (whose stage wraps every other one) and
    /// before the response cache, so that cache hits still count as requests.
    /// </para>
    /// </summary>
    public static IServiceCollection AddLlmProxyRateLimiting(this IServiceCollection services, Action<RateLimitOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);

        var options = services.AddOptions<RateLimitOptions>().BindConfiguration(RateLimitOptions.SectionName);
        if (configure is not null)
        {
            options.Configure(configure);
        }
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, RateLimitingStartup>());
        services.AddMetrics();
        services.TryAddSingleton(TimeProvider.System);

        services.TryAddSingleton<IRequestCostSource, NullRequestCostSource>();
        services.TryAddSingleton<RateLimitPolicyProvider>();
        services.TryAddSingleton<Telemetry.GatewayMetrics>();
        services.TryAddSingleton<RateLimitMetrics>();
        services.TryAddSingleton<IRateLimitStore>(CreateStore);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IChatRequestCompletionListener, BudgetSpendRecorder>());

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IChatMiddleware, RateLimitingChatMiddleware>());
        if (!services.Any(d => d.ServiceType == typeof(RateLimitStoreHealthCheck)))
        {
            services.TryAddSingleton<RateLimitStoreHealthCheck>();
            services.AddHealthChecks().AddCheck<RateLimitStoreHealthCheck>("rate_limits", tags: [HealthEndpoints.ReadinessTag]);
        }
        return services;
    }

    private static IRateLimitStore CreateStore(IServiceProvider services)
    {
        var options = services.GetRequiredService<IOptions<RateLimitOptions>>().Value;
        var time = services.GetRequiredService<TimeProvider>();
        if (options.Store != RateLimitStores.Redis)
        {
            return new LocalRateLimitStore(time);
        }
        var loggers = services.GetRequiredService<ILoggerFactory>();
        var redis = new RedisRateLimitStore(options.Redis, time, loggers.CreateLogger<RedisRateLimitStore>());
        return new FailoverRateLimitStore(redis, new LocalRateLimitStore(time), options.Redis, time,
            services.GetRequiredService<RateLimitMetrics>(), loggers.CreateLogger<FailoverRateLimitStore>());
    }
}
