namespace LlmProxy.Telemetry;

/// <summary>
/// Bucket upper bounds of the gateway's histograms, given to each instrument as its advice when it is created (the
/// exporter's defaults would put every sub-second latency in one bucket).
/// </summary>
internal static class HistogramBuckets
{
    /// <summary>
    /// Latencies from 5 ms to 5 minutes. LLM calls are slow and long-tailed: a streamed completion of a large
    /// answer often runs past a minute, so the top buckets go further than the usual 10 s.
    /// </summary>
    public static readonly IReadOnlyList<double> Seconds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

    /// <summary>The boundaries advised by the OpenTelemetry GenAI semantic conventions for <c>gen_ai.client.operation.duration</c>.</summary>
    public static readonly IReadOnlyList<double> GenAiOperationDuration = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];

    /// <summary>The boundaries advised by the OpenTelemetry GenAI semantic conventions for <c>gen_ai.server.time_to_first_token</c>.</summary>
    public static readonly IReadOnlyList<double> GenAiTimeToFirstToken = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

    /// <summary>The boundaries advised by the OpenTelemetry GenAI semantic conventions for <c>gen_ai.client.token.usage</c>.</summary>
    public static readonly IReadOnlyList<long> GenAiTokenUsage = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
}
