using System.Globalization;
using System.Text;

namespace LlmProxy.Telemetry;

internal enum PrometheusMetricType
{
    Counter,
    Gauge,
    Histogram,
}

/// <summary>
/// Writes the Prometheus text exposition format, version 0.0.4
/// (https://prometheus.io/docs/instrumenting/exposition_formats/): <c># HELP</c> and <c># TYPE</c> once per
/// family, then its samples, one per line, with <c>\n</c> line ends and no timestamps.
/// </summary>
internal sealed class PrometheusTextWriter(StringBuilder output)
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    /// <summary>Writes a family's metadata and samples. A family without samples writes nothing.</summary>
    public void WriteFamily(MetricFamily family)
    {
        ArgumentNullException.ThrowIfNull(family);
        if (family.Samples.Count == 0)
        {
            return;
        }
        WriteMetadata(family.Name, family.Type, family.Help);
        foreach (var sample in family.Samples)
        {
            switch (family.Type)
            {
                case PrometheusMetricType.Histogram:
                    WriteHistogram(family.Name, sample.Labels, family.Bounds, sample.Buckets!, sample.Value);
                    break;
                case PrometheusMetricType.Counter or PrometheusMetricType.Gauge when sample.IsInteger:
                    WriteSample(family.Name, sample.Labels, sample.IntegerValue);
                    break;
                default:
                    WriteSample(family.Name, sample.Labels, sample.Value);
                    break;
            }
        }
    }

    public void WriteMetadata(string name, PrometheusMetricType type, string? help)
    {
        if (!string.IsNullOrEmpty(help))
        {
            output.Append("# HELP ").Append(name).Append(' ');
            AppendEscapedHelp(output, help);
            output.Append('\n');
        }
        output.Append("# TYPE ").Append(name).Append(' ').Append(type switch
        {
            PrometheusMetricType.Counter => "counter",
            PrometheusMetricType.Gauge => "gauge",
            _ => "histogram",
        }).Append('\n');
    }

    /// <param name="labels">Rendered label pairs without braces (see <see cref="PrometheusLabels.Render"/>); empty for none.</param>
    public void WriteSample(string name, string labels, double value)
    {
        AppendSeries(name, labels);
        output.Append(' ').Append(FormatValue(value)).Append('\n');
    }

    public void WriteSample(string name, string labels, long value)
    {
        AppendSeries(name, labels);
        output.Append(' ').Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
    }

    /// <summary>
    /// Writes a histogram's cumulative <c>_bucket</c> lines (the last one <c>le="+Inf"</c>), then <c>_sum</c> and
    /// <c>_count</c>. <paramref name="bucketCounts"/> holds per-bucket (not cumulative) counts, one more than there
    /// are bounds: the last is the overflow bucket. <c>_count</c> is their total, so it always equals the <c>+Inf</c> bucket.
    /// </summary>
    public void WriteHistogram(string name, string labels, ReadOnlySpan<double> upperBounds, ReadOnlySpan<long> bucketCounts, double sum)
    {
        if (bucketCounts.Length != upperBounds.Length + 1)
        {
            throw new ArgumentException("A histogram needs one bucket count per bound plus the +Inf bucket.", nameof(bucketCounts));
        }
        var bucketName = name + "_bucket";
        long cumulative = 0;
        for (var i = 0; i <= upperBounds.Length; i++)
        {
            cumulative += bucketCounts[i];
            output.Append(bucketName).Append('{');
            if (labels.Length > 0)
            {
                output.Append(labels).Append(',');
            }
            output.Append("le=\"").Append(i < upperBounds.Length ? FormatValue(upperBounds[i]) : "+Inf").Append("\"} ")
                .Append(cumulative.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }
        WriteSample(name + "_sum", labels, sum);
        WriteSample(name + "_count", labels, cumulative);
    }

    private void AppendSeries(string name, string labels)
    {
        output.Append(name);
        if (labels.Length > 0)
        {
            output.Append('{').Append(labels).Append('}');
        }
    }

    /// <summary>A sample value as Prometheus parses it: <c>+Inf</c>, <c>-Inf</c>, <c>NaN</c>, or the shortest round-trippable invariant form.</summary>
    public static string FormatValue(double value)
    {
        if (double.IsPositiveInfinity(value))
        {
            return "+Inf";
        }
        if (double.IsNegativeInfinity(value))
        {
            return "-Inf";
        }
        if (double.IsNaN(value))
        {
            return "NaN";
        }
        return value.ToString("R", CultureInfo.InvariantCulture);
    }

    /// <summary>Label values escape backslash, double quote and line feed.</summary>
    public static void AppendEscapedLabelValue(StringBuilder builder, string value)
    {
        foreach (var c in value)
        {
            switch (c)
            {
                case '\\': builder.Append(@"\\"); break;
                case '"': builder.Append("\\\""); break;
                case '\n': builder.Append(@"\n"); break;
                default: builder.Append(c); break;
            }
        }
    }

    /// <summary>HELP text escapes backslash and line feed (a double quote is left as it is).</summary>
    public static void AppendEscapedHelp(StringBuilder builder, string help)
    {
        foreach (var c in help)
        {
            switch (c)
            {
                case '\\': builder.Append(@"\\"); break;
                case '\n': builder.Append(@"\n"); break;
                default: builder.Append(c); break;
            }
        }
    }
}

/// <summary>Label sets rendered once, when a series is created, so that a scrape only copies text.</summary>
internal static class PrometheusLabels
{
    /// <summary>
    /// Renders <c>name="value"</c> pairs, comma separated, without braces. Names are made valid Prometheus
    /// label names; a name that repeats after that is dropped (the first wins). Values are escaped.
    /// </summary>
    public static string Render(ReadOnlySpan<KeyValuePair<string, string>> labels)
    {
        if (labels.IsEmpty)
        {
            return "";
        }
        var builder = new StringBuilder();
        var written = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (key, value) in labels)
        {
            var name = PrometheusNames.LabelName(key);
            if (!written.Add(name))
            {
                continue;
            }
            if (builder.Length > 0)
            {
                builder.Append(',');
            }
            builder.Append(name).Append("=\"");
            PrometheusTextWriter.AppendEscapedLabelValue(builder, value);
            builder.Append('"');
        }
        return builder.ToString();
    }

    /// <summary>The text of a tag value: strings as they are, booleans as <c>true</c>/<c>false</c>, numbers invariant.</summary>
    public static string ValueText(object? value) => value switch
    {
        null => "",
        string s => s,
        bool b => b ? "true" : "false",
        double d => PrometheusTextWriter.FormatValue(d),
        float f => PrometheusTextWriter.FormatValue(f),
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };
}

/// <summary>One metric family as it is written: name, type, help and its samples sorted by label text.</summary>
internal sealed class MetricFamily(string name, PrometheusMetricType type, string? help, double[]? bounds = null)
{
    public string Name { get; } = name;
    public PrometheusMetricType Type { get; } = type;
    public string? Help { get; } = help;

    /// <summary>Histogram bucket upper bounds, strictly increasing, without +Inf.</summary>
    public double[] Bounds { get; } = bounds ?? [];

    public List<MetricSample> Samples { get; } = [];

    /// <summary>
    /// Sorts the samples by label text and merges samples with the same labels (two tag sets that differ
    /// only in ways the text loses, e.g. a value of 1 and of "1"): values and buckets are added.
    /// </summary>
    public void Normalize()
    {
        Samples.Sort(static (a, b) => string.CompareOrdinal(a.Labels, b.Labels));
        for (var i = Samples.Count - 1; i > 0; i--)
        {
            if (Samples[i].Labels == Samples[i - 1].Labels)
            {
                Samples[i - 1] = MetricSample.Merge(Samples[i - 1], Samples[i]);
                Samples.RemoveAt(i);
            }
        }
    }
}

/// <summary>
/// A sample of a family: for counters and gauges the value (integer-valued sums keep an exact
/// <see cref="IntegerValue"/>); for histograms the per-bucket counts and, in <see cref="Value"/>, the sum.
/// </summary>
internal readonly record struct MetricSample(string Labels, double Value, long IntegerValue = 0, bool IsInteger = false, long[]? Buckets = null)
{
    public static MetricSample Integer(string labels, long value) => new(labels, value, value, IsInteger: true);

    public static MetricSample Histogram(string labels, long[] buckets, double sum) => new(labels, sum, Buckets: buckets);

    public static MetricSample Merge(MetricSample a, MetricSample b)
    {
        if (a.Buckets is { } left && b.Buckets is { } right)
        {
            var buckets = new long[left.Length];
            for (var i = 0; i < buckets.Length; i++)
            {
                buckets[i] = left[i] + right[i];
            }
            return Histogram(a.Labels, buckets, a.Value + b.Value);
        }
        return a.IsInteger && b.IsInteger ? Integer(a.Labels, a.IntegerValue + b.IntegerValue) : new MetricSample(a.Labels, a.Value + b.Value);
    }
}
