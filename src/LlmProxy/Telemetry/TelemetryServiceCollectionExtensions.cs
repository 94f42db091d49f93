using LlmProxy.Hosting;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace LlmProxy.Telemetry;

public static class TelemetryServiceCollectionExtensions
{
    /// <summary>
    /// Adds the gateway's metrics: the <c>LlmProxy</c> meter's instruments (<c>GatewayMetrics</c>), the collector
    /// behind <c>/metrics</c> and the <c>LlmProxy:Metrics</c> options. Map the endpoint with <c>MapLlmProxyMetrics</c>.
    /// </summary>
    public static ILlmProxyBuilder AddLlmProxyTelemetry(this ILlmProxyBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddLlmProxyTelemetry(builder.Configuration);
        return builder;
    }

    /// <inheritdoc cref="AddLlmProxyTelemetry(ILlmProxyBuilder)"/>
    public static IServiceCollection AddLlmProxyTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);

        services.AddMetrics();
        services.AddOptions<MetricsOptions>().Bind(configuration.GetSection(MetricsOptions.SectionName));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<MetricsOptions>, MetricsOptionsValidator>());
        services.TryAddSingleton<GatewayMetrics>();
        services.TryAddSingleton<MetricsCollector>();
        services.AddOptions<TracingOptions>().Bind(configuration.GetSection(TracingOptions.SectionName));
        services.AddHostedService<TracingService>();
        return services;
    }

    /// <summary>Connects the gateway's hooks (completion listener, dispatcher events, breaker registry, pipeline stage) to <see cref="GatewayMetrics"/>.</summary>
    internal static IServiceCollection AddGatewayMetricsRecorder(this IServiceCollection services)
    {
        services.TryAddSingleton<GatewayMetricsRecorder>();
        services.AddSingleton<Pipeline.IChatRequestCompletionListener>(sp => sp.GetRequiredService<GatewayMetricsRecorder>());
        services.AddSingleton<Pipeline.IChatMiddleware>(sp => sp.GetRequiredService<GatewayMetricsRecorder>());
        return services;
    }
}
