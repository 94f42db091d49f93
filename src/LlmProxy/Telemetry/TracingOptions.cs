namespace LlmProxy.Telemetry;

/// <summary>OpenTelemetry traces exported over OTLP. Off by default.</summary>
public sealed class TracingOptions
{
    public const string SectionName = "LlmProxy:Tracing";

    /// <summary>Export traces. The default is false.</summary>
    public bool Enabled { get; set; }

    /// <summary>OTLP collector endpoint. The default is http://localhost:4317 (gRPC) or http://localhost:4318/v1/traces (HTTP).</summary>
    public Uri? Endpoint { get; set; }

    /// <summary><c>grpc</c> (the default) or <c>http/protobuf</c>.</summary>
    public string Protocol { get; set; } = "grpc";

    /// <summary>Share of new traces recorded; a sampled parent's decision is always followed. The default is 1.0.</summary>
    public double SampleRatio { get; set; } = 1.0;

    /// <summary>The <c>service.name</c> resource attribute. The default is <c>llmproxy</c>.</summary>
    public string ServiceName { get; set; } = "llmproxy";
}
