using LlmProxy.Pipeline;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace LlmProxy.RateLimiting;

public static class RateLimitingServiceCollectionExtensions
{
    /// <summary>
    /// Adds per-tenant rate limits and budgets, configured from <c>LlmProxy:RateLimits</c> (see
    /// <see cref="RateLimitOptions"/>), optionally adjusted by <paramref name="configure"/>. The limiter becomes the
    /// first stage of the chat pipeline, ahead of stages registered before it (the response cache in particular), so
    /// that every request counts. Replace <see cref="IRequestCostSource"/> to feed the budgets.
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
        services.TryAddSingleton<RateLimitMetrics>();
        services.TryAddSingleton<IRateLimitStore>(CreateStore);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IChatRequestCompletionListener, BudgetSpendRecorder>());

        var stage = ServiceDescriptor.Singleton<IChatMiddleware, RateLimitingChatMiddleware>();
        if (!services.Any(d => d.ServiceType == typeof(IChatMiddleware) && d.ImplementationType == typeof(RateLimitingChatMiddleware)))
        {
            // Stages run in registration order: go in front of any stage already registered.
            var first = services.Select((d, i) => (d, i)).FirstOrDefault(x => x.d.ServiceType == typeof(IChatMiddleware));
            if (first.d is null)
            {
                services.Add(stage);
            }
            else
            {
                services.Insert(first.i, stage);
            }
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
