using Microsoft.Extensions.Options;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace LlmProxy.Telemetry;

/// <summary>
/// Owns the OpenTelemetry tracer provider when tracing is on: the gateway's spans, ASP.NET Core's incoming
/// request spans (which continue a client's W3C <c>traceparent</c>) and HttpClient's outgoing spans, exported
/// over OTLP. The outgoing requests carry <c>traceparent</c> to the upstream. Spans are flushed on shutdown.
/// </summary>
internal sealed partial class TracingService(IOptions<TracingOptions> options, ILogger<TracingService> logger) : IHostedService
{
    private TracerProvider? _provider;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        if (!settings.Enabled)
        {
            return Task.CompletedTask;
        }
        var http = string.Equals(settings.Protocol, "http/protobuf", StringComparison.OrdinalIgnoreCase);
        _provider = Sdk.CreateTracerProviderBuilder()
            .SetResourceBuilder(ResourceBuilder.CreateDefault().AddService(settings.ServiceName))
            .AddSource(GatewayActivities.SourceName, "Microsoft.AspNetCore", "System.Net.Http")
            .SetSampler(new ParentBasedSampler(new TraceIdRatioBasedSampler(Math.Clamp(settings.SampleRatio, 0, 1))))
            .AddOtlpExporter(exporter =>
            {
                exporter.Protocol = http ? OtlpExportProtocol.HttpProtobuf : OtlpExportProtocol.Grpc;
                if (settings.Endpoint is { } endpoint)
                {
                    exporter.Endpoint = endpoint;
                }
            })
            .Build();
        LogEnabled(logger, settings.Endpoint?.ToString() ?? "(default)", settings.Protocol);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _provider?.ForceFlush(5000);
        _provider?.Dispose();
        _provider = null;
        return Task.CompletedTask;
    }

    [LoggerMessage(EventId = 7101, Level = LogLevel.Information, Message = "OpenTelemetry tracing on: OTLP {Protocol} to {Endpoint}")]
    private static partial void LogEnabled(ILogger logger, string endpoint, string protocol);
}
