using System.Text;
using LlmProxy.Telemetry;
using Xunit;

namespace LlmProxy.Tests.Telemetry;

public sealed class PrometheusTextWriterTests
{
    private static string Write(Action<PrometheusTextWriter> write)
    {
        var output = new StringBuilder();
        write(new PrometheusTextWriter(output));
        return output.ToString();
    }

    [Fact]
    public void ContentType_IsTextFormat004Utf8()
    {
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", PrometheusTextWriter.ContentType);
    }

    [Theory]
    [InlineData("plain", "plain")]
    [InlineData(@"back\slash", @"back\\slash")]
    [InlineData("double\"quote", "double\\\"quote")]
    [InlineData("line\nfeed", @"line\nfeed")]
    [InlineData("all \\ \" \n three", "all \\\\ \\\" \\n three")]
    [InlineData("unicode ü 🙂 and tab\t", "unicode ü 🙂 and tab\t")]
    public void Render_LabelValueWithSpecialCharacters_IsEscaped(string value, string expected)
    {
        var labels = PrometheusLabels.Render([new("tenant", value)]);

        Assert.Equal($"tenant=\"{expected}\"", labels);
    }

    [Fact]
    public void WriteMetadata_HelpWithBackslashNewlineAndQuote_EscapesBackslashAndNewlineOnly()
    {
        var text = Write(w => w.WriteMetadata("x_total", PrometheusMetricType.Counter, "a \\ b\nc \"d\""));

        Assert.Equal("# HELP x_total a \\\\ b\\nc \"d\"\n# TYPE x_total counter\n", text);
    }

    [Fact]
    public void WriteMetadata_NoHelp_WritesTypeOnly()
    {
        Assert.Equal("# TYPE g gauge\n", Write(w => w.WriteMetadata("g", PrometheusMetricType.Gauge, null)));
    }

    [Theory]
    [InlineData(double.PositiveInfinity, "+Inf")]
    [InlineData(double.NegativeInfinity, "-Inf")]
    [InlineData(double.NaN, "NaN")]
    [InlineData(0.0, "0")]
    [InlineData(-0.0, "-0")]
    [InlineData(1.0, "1")]
    [InlineData(0.1, "0.1")]
    [InlineData(0.005, "0.005")]
    [InlineData(1048576.0, "1048576")]
    [InlineData(1e-7, "1E-07")]
    [InlineData(1.7976931348623157e308, "1.7976931348623157E+308")]
    public void FormatValue_SpecialAndOrdinaryValues_IsInvariantPrometheusSyntax(double value, string expected)
    {
        Assert.Equal(expected, PrometheusTextWriter.FormatValue(value));
    }

    [Theory]
    [InlineData(0.1)]
    [InlineData(1.0 / 3)]
    [InlineData(123456789.123456789)]
    [InlineData(5e-324)]
    [InlineData(2.5e21)]
    public void FormatValue_AnyDouble_RoundTrips(double value)
    {
        var text = PrometheusTextWriter.FormatValue(value);

        Assert.Equal(value, double.Parse(text, System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void WriteHistogram_PerBucketCounts_WritesCumulativeBucketsEndingWithInfEqualToCount()
    {
        var text = Write(w => w.WriteHistogram("lat_seconds", "route=\"a\"", [0.1, 1, 10], [2, 0, 3, 1], 17.5));

        Assert.Equal(
            "lat_seconds_bucket{route=\"a\",le=\"0.1\"} 2\n" +
            "lat_seconds_bucket{route=\"a\",le=\"1\"} 2\n" +
            "lat_seconds_bucket{route=\"a\",le=\"10\"} 5\n" +
            "lat_seconds_bucket{route=\"a\",le=\"+Inf\"} 6\n" +
            "lat_seconds_sum{route=\"a\"} 17.5\n" +
            "lat_seconds_count{route=\"a\"} 6\n", text);
    }

    [Fact]
    public void WriteHistogram_NoLabelsNoBounds_WritesOnlyInfSumAndCount()
    {
        var text = Write(w => w.WriteHistogram("h", "", [], [4], 2));

        Assert.Equal("h_bucket{le=\"+Inf\"} 4\nh_sum 2\nh_count 4\n", text);
    }

    [Fact]
    public void WriteHistogram_BucketCountMismatch_Throws()
    {
        Assert.Throws<ArgumentException>(() => Write(w => w.WriteHistogram("h", "", [1, 2], [1, 2], 0)));
    }

    [Fact]
    public void WriteFamily_CounterWithIntegerAndLabels_WritesHelpTypeAndSamples()
    {
        var family = new MetricFamily("llmproxy_requests_total", PrometheusMetricType.Counter, "Requests.");
        family.Samples.Add(MetricSample.Integer("tenant=\"b\"", 2));
        family.Samples.Add(MetricSample.Integer("tenant=\"a\"", 5));
        family.Normalize();

        var text = Write(w => w.WriteFamily(family));

        Assert.Equal(
            "# HELP llmproxy_requests_total Requests.\n" +
            "# TYPE llmproxy_requests_total counter\n" +
            "llmproxy_requests_total{tenant=\"a\"} 5\n" +
            "llmproxy_requests_total{tenant=\"b\"} 2\n", text);
    }

    [Fact]
    public void WriteFamily_NoSamples_WritesNothing()
    {
        Assert.Equal("", Write(w => w.WriteFamily(new MetricFamily("empty", PrometheusMetricType.Gauge, "Nothing."))));
    }

    [Fact]
    public void Normalize_SamplesWithSameLabelText_AreMergedNotDuplicated()
    {
        var family = new MetricFamily("h", PrometheusMetricType.Histogram, "h", [1]);
        family.Samples.Add(MetricSample.Histogram("a=\"1\"", [1, 2], 3));
        family.Samples.Add(MetricSample.Histogram("a=\"1\"", [4, 0], 1.5));

        family.Normalize();

        var sample = Assert.Single(family.Samples);
        Assert.Equal([5, 2], sample.Buckets!);
        Assert.Equal(4.5, sample.Value);
    }

    [Fact]
    public void Render_LabelNamesWithDotsAndDuplicatesAfterSanitizing_UsesUnderscoresAndKeepsFirst()
    {
        var labels = PrometheusLabels.Render([new("gen_ai.token.type", "input"), new("gen_ai_token_type", "dup"), new("9lives", "x")]);

        Assert.Equal("gen_ai_token_type=\"input\",key_9lives=\"x\"", labels);
    }

    [Theory]
    [InlineData(null, "")]
    [InlineData("s", "s")]
    [InlineData(true, "true")]
    [InlineData(false, "false")]
    [InlineData(42, "42")]
    [InlineData(1.5, "1.5")]
    public void ValueText_CommonTagValueTypes_AreInvariantText(object? value, string expected)
    {
        Assert.Equal(expected, PrometheusLabels.ValueText(value));
    }
}
