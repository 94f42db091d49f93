using LlmProxy.Caching;
using LlmProxy.Configuration;
using LlmProxy.Health;
using LlmProxy.Metering;
using LlmProxy.OpenAi;
using LlmProxy.Pipeline;
using LlmProxy.Providers;
using LlmProxy.Providers.Bedrock;
using LlmProxy.Providers.OpenAi;
using LlmProxy.RateLimiting;
using LlmProxy.Routing;
using LlmProxy.Telemetry;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace LlmProxy.Hosting;

/// <summary>Entry point for the gateway's dependency registrations. Features register with TryAdd so a host can replace them.</summary>
public interface ILlmProxyBuilder
{
    IServiceCollection Services { get; }
    IConfiguration Configuration { get; }
}

internal sealed class LlmProxyBuilder(IServiceCollection services, IConfiguration configuration) : ILlmProxyBuilder
{
    public IServiceCollection Services { get; } = services;
    public IConfiguration Configuration { get; } = configuration;
}

public static class LlmProxyServiceCollectionExtensions
{
    public static ILlmProxyBuilder AddLlmProxy(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);

        services.AddOptions<LlmProxyOptions>().Bind(configuration.GetSection(LlmProxyOptions.SectionName));
        // A configuration with tenants of its own leaves out the quick start's demo tenant and routes.
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IPostConfigureOptions<LlmProxyOptions>>(new QuickStartDefaults(configuration)));
        // Each deployment's own section, where its provider finds the keys only it has.
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IPostConfigureOptions<LlmProxyOptions>>(new DeploymentConfigurationSections(configuration)));
        // Kestrel stops accepting on SIGTERM, then waits the grace period for in-flight requests and streams; hosted
        // services (the usage ledger's flush among them) stop after that, with a budget of their own.
        services.AddLlmProxyGracefulShutdown(configuration);
        services.AddLlmProxyListeners(configuration);
        services.AddLlmProxyRequestLimits();
        services.TryAddSingleton(TimeProvider.System);
        services.AddHttpForwarder();

        // One line per provider; everything else about a provider lives in its folder under Providers/.
        services.AddOpenAiProvider();
        services.AddBedrockProvider();
        services.TryAddSingleton<ProviderRegistry>();
        services.TryAddSingleton<GatewayConfigurationBuilder>();
        services.TryAddSingleton<GatewayConfigurationProvider>();
        services.AddLlmProxyConfigurationReload();

        services.TryAddSingleton<DeploymentHealthRegistry>();
        services.TryAddSingleton<IDeploymentSelector, BreakerAwareSelector>();
        services.TryAddSingleton<UpstreamDispatcher>();
        services.TryAddSingleton<ChatPipeline>();
        services.TryAddSingleton<ChatCompletionsEndpoint>();
        services.TryAddSingleton<ModelsEndpoint>();

        // Telemetry first: its pipeline stage must wrap every other stage.
        services.AddLlmProxyTelemetry(configuration);
        services.AddGatewayMetricsRecorder();
        // Rate limits before the cache: cache hits still count as requests.
        services.AddLlmProxyRateLimiting();
        services.AddLlmProxyResponseCache();
        // After the cache, so cache hits skip metering's upstream-usage stage.
        services.AddLlmProxyMetering();
        // Budgets are charged the cost the ledger records.
        services.Replace(ServiceDescriptor.Singleton<IRequestCostSource, UsageCostSource>());

        services.AddHealthChecks().AddCheck<ConfigurationHealthCheck>("configuration", tags: [HealthEndpoints.ReadinessTag]);
        services.AddHostedService<EmbeddedSimulatorService>();
        return new LlmProxyBuilder(services, configuration);
    }
}
