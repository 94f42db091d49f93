using System.Diagnostics.Metrics;

namespace LlmProxy.Telemetry;

/// <summary>
/// Bucket upper bounds of histograms. An instrument's <see cref="InstrumentAdvice{T}.HistogramBucketBoundaries"/>
/// wins; otherwise the unit decides: <see cref="Seconds"/> for <c>s</c>, the same in milliseconds for <c>ms</c>,
/// <see cref="Counts"/> for anything else (token counts, sizes).
/// </summary>
internal static class HistogramBuckets
{
    /// <summary>
    /// Latencies from 5 ms to 5 minutes. LLM calls are slow and long-tailed: a streamed completion of a large
    /// answer often runs past a minute, so the top buckets go further than the usual 10 s.
    /// </summary>
    public static readonly double[] Seconds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

    /// <summary>Powers of 4 from 1 to 1,048,576 (one million): token counts span single tokens to 1M-token contexts.</summary>
    public static readonly double[] Counts = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576];

    /// <summary>The boundaries advised by the OpenTelemetry GenAI semantic conventions for <c>gen_ai.client.operation.duration</c>.</summary>
    public static readonly IReadOnlyList<double> GenAiOperationDuration = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];

    /// <summary>The boundaries advised by the OpenTelemetry GenAI semantic conventions for <c>gen_ai.server.time_to_first_token</c>.</summary>
    public static readonly IReadOnlyList<double> GenAiTimeToFirstToken = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

    /// <summary>The boundaries advised by the OpenTelemetry GenAI semantic conventions for <c>gen_ai.client.token.usage</c>.</summary>
    public static readonly IReadOnlyList<long> GenAiTokenUsage = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];

    private static readonly double[] Milliseconds = Seconds.Select(s => s * 1000).ToArray();

    /// <summary>The bounds for <paramref name="instrument"/>: its advice when it has some, else the default for its unit.</summary>
    public static double[] Resolve(Instrument instrument)
    {
        var advised = instrument switch
        {
            Instrument<double> i => i.Advice?.HistogramBucketBoundaries?.ToArray(),
            Instrument<float> i => i.Advice?.HistogramBucketBoundaries?.Select(v => (double)v).ToArray(),
            Instrument<long> i => i.Advice?.HistogramBucketBoundaries?.Select(v => (double)v).ToArray(),
            Instrument<int> i => i.Advice?.HistogramBucketBoundaries?.Select(v => (double)v).ToArray(),
            Instrument<short> i => i.Advice?.HistogramBucketBoundaries?.Select(v => (double)v).ToArray(),
            Instrument<byte> i => i.Advice?.HistogramBucketBoundaries?.Select(v => (double)v).ToArray(),
            Instrument<decimal> i => i.Advice?.HistogramBucketBoundaries?.Select(v => (double)v).ToArray(),
            _ => null,
        };
        if (advised is not null)
        {
            // An explicit empty list is honoured: one bucket, i.e. only _sum and _count.
            return Normalize(advised);
        }
        return instrument.Unit switch
        {
            "s" => Seconds,
            "ms" => Milliseconds,
            _ => Counts,
        };
    }

    /// <summary>Finite, strictly increasing bounds: what the exposition format can express.</summary>
    internal static double[] Normalize(IEnumerable<double> bounds) =>
        bounds.Where(double.IsFinite).Distinct().Order().ToArray();
}
