using System.Diagnostics.Metrics;
using LlmProxy.Hosting;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.Metrics;
using Microsoft.Extensions.Options;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace LlmProxy.Telemetry;

public static class TelemetryServiceCollectionExtensions
{
    /// <summary>
    /// The name under which OpenTelemetry's SDK subscribes to <c>IMeterFactory</c> meters (its <c>IMetricsListener</c>),
    /// used by <see cref="MetricsBuilderExtensions.EnableMetrics(IMetricsBuilder, string?, string?, string?, MeterScope)"/> rules.
    /// </summary>
    internal const string OpenTelemetryListenerName = "OpenTelemetry";

    private const string RuntimeMeterName = "System.Runtime";
    private const string AspNetCoreHostingMeterName = "Microsoft.AspNetCore.Hosting";
    private const string ServerRequestDurationInstrument = "http.server.request.duration";

    /// <summary>
    /// Adds the gateway's telemetry on OpenTelemetry: the <c>LlmProxy</c> meter's instruments (<c>GatewayMetrics</c>),
    /// ASP.NET Core's and HttpClient's request metrics and the .NET runtime metrics, exported to Prometheus
    /// (<c>LlmProxy:Metrics</c>; map the endpoint with <c>MapLlmProxyMetrics</c>), and traces over OTLP when
    /// <c>LlmProxy:Tracing:Enabled</c> is set.
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

        services.AddOptions<MetricsOptions>().Bind(configuration.GetSection(MetricsOptions.SectionName));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<MetricsOptions>, MetricsOptionsValidator>());
        services.AddOptions<TracingOptions>().Bind(configuration.GetSection(TracingOptions.SectionName));
        services.TryAddSingleton<GatewayMetrics>();

        // Which providers exist is decided here, from configuration; their options are still validated at startup.
        var metrics = configuration.GetSection(MetricsOptions.SectionName).Get<MetricsOptions>() ?? new MetricsOptions();
        var tracing = configuration.GetSection(TracingOptions.SectionName).Get<TracingOptions>() ?? new TracingOptions();
        var openTelemetry = services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(tracing.ServiceName));

        // The gateway's meter and ASP.NET Core's come from this container's IMeterFactory: subscribing to them as
        // "local" meters (not by name, as AddMeter would) keeps another host in the same process (a test host, the
        // simulator) out of this gateway's scrape.
        services.AddMetrics(builder => builder
            .EnableMetrics(GatewayMetrics.MeterName, instrumentName: null, OpenTelemetryListenerName, MeterScope.Local)
            .EnableMetrics(AspNetCoreHostingMeterName, ServerRequestDurationInstrument, OpenTelemetryListenerName, MeterScope.Local));
        if (metrics.Enabled)
        {
            var maxSeries = Math.Max(1, metrics.MaxSeriesPerMetric);
            openTelemetry.WithMetrics(meters => meters
                .AddRuntimeInstrumentation()
                .AddView(instrument => StreamConfiguration(instrument, maxSeries))
                .AddPrometheusExporter(exporter =>
                {
                    // A scrape reads the current values: no cache between scrapers (the default keeps one for 300 ms).
                    exporter.ScrapeResponseCacheDurationMilliseconds = 0;
                    // One process is one target: Prometheus's job and instance labels say which. The scope label
                    // (otel_scope_name) and target_info would only repeat that on every series.
                    exporter.ScopeInfoEnabled = false;
                    exporter.TargetInfoEnabled = false;
                }));
        }
        if (tracing.Enabled)
        {
            openTelemetry.WithTracing(tracer => tracer
                .AddSource(GatewayActivities.SourceName)
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .SetSampler(new ParentBasedSampler(new TraceIdRatioBasedSampler(Math.Clamp(tracing.SampleRatio, 0, 1))))
                .AddOtlpExporter(exporter =>
                {
                    exporter.Protocol = string.Equals(tracing.Protocol, "http/protobuf", StringComparison.OrdinalIgnoreCase)
                        ? OtlpExportProtocol.HttpProtobuf
                        : OtlpExportProtocol.Grpc;
                    if (tracing.Endpoint is { } endpoint)
                    {
                        exporter.Endpoint = endpoint;
                    }
                }));
        }
        return services;
    }

    /// <summary>
    /// The one view over every instrument (each matching view would make a stream of its own): the series limit, and
    /// the runtime's gauges whose names end in <c>.count</c>, which Prometheus reserves for histograms
    /// (<c>promtool check metrics</c> flags them): the thread pool's is renamed, the others are dropped.
    /// </summary>
    private static MetricStreamConfiguration StreamConfiguration(Instrument instrument, int maxSeries) =>
        (instrument.Meter.Name, instrument.Name) switch
        {
            (RuntimeMeterName, "dotnet.assembly.count" or "dotnet.process.cpu.count" or "dotnet.timer.count") => MetricStreamConfiguration.Drop,
            (RuntimeMeterName, "dotnet.thread_pool.thread.count") => new MetricStreamConfiguration { Name = "dotnet.thread_pool.threads", CardinalityLimit = maxSeries },
            _ => new MetricStreamConfiguration { CardinalityLimit = maxSeries },
        };

    /// <summary>Connects the gateway's hooks (completion listener, dispatcher events, breaker registry, pipeline stage) to <see cref="GatewayMetrics"/>.</summary>
    internal static IServiceCollection AddGatewayMetricsRecorder(this IServiceCollection services)
    {
        services.TryAddSingleton<GatewayMetricsRecorder>();
        services.AddSingleton<Pipeline.IChatRequestCompletionListener>(sp => sp.GetRequiredService<GatewayMetricsRecorder>());
        services.AddSingleton<Pipeline.IChatMiddleware>(sp => sp.GetRequiredService<GatewayMetricsRecorder>());
        return services;
    }
}
