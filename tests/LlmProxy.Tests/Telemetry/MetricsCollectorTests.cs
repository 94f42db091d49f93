using System.Diagnostics;
using System.Diagnostics.Metrics;
using LlmProxy.Telemetry;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit;

namespace LlmProxy.Tests.Telemetry;

public sealed class MetricsCollectorTests
{
    [Fact]
    public void Collect_CounterAndHistogramThroughRealMeter_ExposesExactValues()
    {
        using var services = new TelemetryServices();
        var meter = services.MeterFactory.Create("LlmProxy.Test");
        var counter = meter.CreateCounter<long>("test.jobs", "{job}", "Jobs done.");
        var histogram = meter.CreateHistogram("test.wait", "s", "Wait.", tags: null,
            new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.1, 1, 10] });

        counter.Add(3, new KeyValuePair<string, object?>("kind", "a"));
        counter.Add(4, new KeyValuePair<string, object?>("kind", "a"));
        counter.Add(1, new KeyValuePair<string, object?>("kind", "b"));
        foreach (var value in new[] { 0.05, 0.1, 0.5, 2.0, 20.0 })
        {
            histogram.Record(value, new KeyValuePair<string, object?>("queue", "q1"));
        }

        var scrape = services.Scrape();

        Assert.Equal("counter", scrape.Types["test_jobs_total"]);
        Assert.Equal("Jobs done.", scrape.Help["test_jobs_total"]);
        Assert.Equal("7", scrape.Samples["test_jobs_total{kind=\"a\"}"]);
        Assert.Equal("1", scrape.Samples["test_jobs_total{kind=\"b\"}"]);

        Assert.Equal("histogram", scrape.Types["test_wait_seconds"]);
        Assert.Equal(
            [
                "test_wait_seconds_bucket{queue=\"q1\",le=\"0.1\"}",
                "test_wait_seconds_bucket{queue=\"q1\",le=\"1\"}",
                "test_wait_seconds_bucket{queue=\"q1\",le=\"10\"}",
                "test_wait_seconds_bucket{queue=\"q1\",le=\"+Inf\"}",
                "test_wait_seconds_sum{queue=\"q1\"}",
                "test_wait_seconds_count{queue=\"q1\"}",
            ],
            scrape.SampleKeys.Where(k => k.StartsWith("test_wait_seconds", StringComparison.Ordinal)));
        Assert.Equal(2, scrape.Value("test_wait_seconds_bucket{queue=\"q1\",le=\"0.1\"}")); // 0.05 and 0.1 (le is inclusive)
        Assert.Equal(3, scrape.Value("test_wait_seconds_bucket{queue=\"q1\",le=\"1\"}"));
        Assert.Equal(4, scrape.Value("test_wait_seconds_bucket{queue=\"q1\",le=\"10\"}"));
        Assert.Equal(5, scrape.Value("test_wait_seconds_bucket{queue=\"q1\",le=\"+Inf\"}"));
        Assert.Equal(5, scrape.Value("test_wait_seconds_count{queue=\"q1\"}"));
        Assert.Equal(0.05 + 0.1 + 0.5 + 2.0 + 20.0, scrape.Value("test_wait_seconds_sum{queue=\"q1\"}"), 12);
    }

    [Fact]
    public void Collect_CounterAcrossScrapes_IsMonotonicAndCumulative()
    {
        using var services = new TelemetryServices();
        var counter = services.MeterFactory.Create("LlmProxy.Test").CreateCounter<double>("test.cost", "USD", "Cost.");

        counter.Add(0.25);
        var first = services.Scrape().Value("test_cost_usd_total");
        var again = services.Scrape().Value("test_cost_usd_total");
        counter.Add(0.5);
        counter.Add(-1); // a negative delta on a counter is a bug of the caller: ignored, never a decrease
        var second = services.Scrape().Value("test_cost_usd_total");

        Assert.Equal(0.25, first);
        Assert.Equal(first, again);
        Assert.Equal(0.75, second);
    }

    [Fact]
    public void Collect_UpDownCounterAndGauge_AreGauges()
    {
        using var services = new TelemetryServices();
        var meter = services.MeterFactory.Create("LlmProxy.Test");
        var upDown = meter.CreateUpDownCounter<int>("test.active", "{conn}", "Active.");
        var gauge = meter.CreateGauge<double>("test.temperature", "Cel", "Temperature.");

        upDown.Add(5);
        upDown.Add(-2);
        gauge.Record(20.5);
        gauge.Record(19.25);
        var scrape = services.Scrape();

        Assert.Equal("gauge", scrape.Types["test_active"]);
        Assert.Equal("3", scrape.Samples["test_active"]);
        Assert.Equal("gauge", scrape.Types["test_temperature_celsius"]);
        Assert.Equal("19.25", scrape.Samples["test_temperature_celsius"]);
    }

    [Fact]
    public void Collect_ObservableInstruments_ReportOnlyWhatTheCallbackReturnsAtThisScrape()
    {
        using var services = new TelemetryServices();
        var meter = services.MeterFactory.Create("LlmProxy.Test");
        var queues = new List<(string Name, int Depth)> { ("a", 3), ("b", 1) };
        var total = 10L;
        meter.CreateObservableGauge("test.queue.depth", () => queues.Select(q => new Measurement<int>(q.Depth, new KeyValuePair<string, object?>("queue", q.Name))), "{item}", "Depth.");
        meter.CreateObservableCounter("test.processed", () => total, "{item}", "Processed.");

        var first = services.Scrape();
        queues.RemoveAt(1);
        queues[0] = ("a", 7);
        total = 15;
        var second = services.Scrape();

        Assert.Equal("3", first.Samples["test_queue_depth{queue=\"a\"}"]);
        Assert.Equal("1", first.Samples["test_queue_depth{queue=\"b\"}"]);
        Assert.Equal("10", first.Samples["test_processed_total"]);
        Assert.Equal("counter", first.Types["test_processed_total"]);
        Assert.Equal("7", second.Samples["test_queue_depth{queue=\"a\"}"]);
        Assert.False(second.Has("test_queue_depth{queue=\"b\"}"));
        Assert.Equal("15", second.Samples["test_processed_total"]);
    }

    [Fact]
    public void Collect_ObservableCallbackThrows_OtherMetricsStillWrittenAndWarningLogged()
    {
        using var services = new TelemetryServices();
        var meter = services.MeterFactory.Create("LlmProxy.Test");
        meter.CreateObservableGauge<int>("test.broken", (Func<int>)(() => throw new InvalidOperationException("boom")));
        meter.CreateObservableGauge("test.fine", () => 1, "{x}", "Fine.");

        var scrape = services.Scrape();

        Assert.Equal("1", scrape.Samples["test_fine"]);
        Assert.Contains(services.Logs.Entries, e => e.EventId.Id == 7003 && e.Level == LogLevel.Warning);
    }

    [Fact]
    public void Collect_TagsInAnyOrder_AreOneSeriesWithLabelsSortedByKey()
    {
        using var services = new TelemetryServices();
        var counter = services.MeterFactory.Create("LlmProxy.Test").CreateCounter<long>("test.ordered", "{x}", "Ordered.");

        counter.Add(1, new("b", "2"), new("a", "1"));
        counter.Add(1, new("a", "1"), new("b", "2"));
        var scrape = services.Scrape();

        Assert.Equal(["test_ordered_total{a=\"1\",b=\"2\"}"], scrape.SeriesOf("test_ordered_total"));
        Assert.Equal(2, scrape.Value("test_ordered_total{a=\"1\",b=\"2\"}"));
    }

    [Fact]
    public void Collect_TagValuesThatRenderTheSame_AreMergedIntoOneSeries()
    {
        using var services = new TelemetryServices();
        var counter = services.MeterFactory.Create("LlmProxy.Test").CreateCounter<long>("test.merged", "{x}", "Merged.");

        counter.Add(1, new KeyValuePair<string, object?>("code", 200));
        counter.Add(2, new KeyValuePair<string, object?>("code", "200"));
        var scrape = services.Scrape();

        Assert.Equal(["test_merged_total{code=\"200\"}"], scrape.SeriesOf("test_merged_total"));
        Assert.Equal(3, scrape.Value("test_merged_total{code=\"200\"}"));
    }

    [Fact]
    public void Collect_MoreLabelSetsThanTheLimit_FoldsNewOnesIntoOtherAndWarnsOnce()
    {
        using var services = new TelemetryServices(new Dictionary<string, string?> { ["LlmProxy:Metrics:MaxSeriesPerMetric"] = "3" });
        var meter = services.MeterFactory.Create("LlmProxy.Test");
        var counter = meter.CreateCounter<long>("test.users", "{request}", "Requests by user (a bad label).");
        var histogram = meter.CreateHistogram<double>("test.size", "By", "Sizes.");

        for (var i = 0; i < 10; i++)
        {
            counter.Add(1, new("user", "u" + i), new("region", "eu"));
            histogram.Record(i, new KeyValuePair<string, object?>("user", "u" + i));
        }
        counter.Add(5, new("user", "u1"), new("region", "eu")); // an existing series keeps counting on its own
        var scrape = services.Scrape();

        Assert.Equal(
            [
                "test_users_total{region=\"eu\",user=\"u0\"}",
                "test_users_total{region=\"eu\",user=\"u1\"}",
                "test_users_total{region=\"eu\",user=\"u2\"}",
                "test_users_total{region=\"other\",user=\"other\"}",
            ],
            scrape.SeriesOf("test_users_total"));
        Assert.Equal(6, scrape.Value("test_users_total{region=\"eu\",user=\"u1\"}"));
        Assert.Equal(7, scrape.Value("test_users_total{region=\"other\",user=\"other\"}"));
        Assert.Equal(7, scrape.Value("test_size_bytes_count{user=\"other\"}"));
        Assert.Equal(3 + 4 + 5 + 6 + 7 + 8 + 9, scrape.Value("test_size_bytes_sum{user=\"other\"}"));

        var warnings = services.Logs.Entries.Where(e => e.EventId.Id == 7001).ToList();
        Assert.Equal(2, warnings.Count); // once per metric, not once per folded measurement
        Assert.Contains(warnings, w => w.Message.Contains("test_users_total", StringComparison.Ordinal));
        Assert.Contains(warnings, w => w.Message.Contains("test_size_bytes", StringComparison.Ordinal));
    }

    [Fact]
    public void Collect_HistogramWithoutAdvice_UsesDefaultBucketsForItsUnit()
    {
        using var services = new TelemetryServices();
        var meter = services.MeterFactory.Create("LlmProxy.Test");
        meter.CreateHistogram<double>("test.latency", "s", "Latency.").Record(0.3);
        meter.CreateHistogram<long>("test.tokens", "{token}", "Tokens.").Record(1000);

        var scrape = services.Scrape();

        var secondsBounds = scrape.SeriesOf("test_latency_seconds_bucket").Select(k => k[(k.IndexOf("le=\"", StringComparison.Ordinal) + 4)..^2]);
        Assert.Equal(HistogramBuckets.Seconds.Select(PrometheusTextWriter.FormatValue).Append("+Inf"), secondsBounds);
        Assert.Equal("0.005", secondsBounds.First());
        var countBounds = scrape.SeriesOf("test_tokens_bucket").Select(k => k[(k.IndexOf("le=\"", StringComparison.Ordinal) + 4)..^2]);
        Assert.Equal(["1", "4", "16", "64", "256", "1024", "4096", "16384", "65536", "262144", "1048576", "+Inf"], countBounds);
        Assert.Equal(0, scrape.Value("test_tokens_bucket{le=\"256\"}"));
        Assert.Equal(1, scrape.Value("test_tokens_bucket{le=\"1024\"}"));
    }

    [Fact]
    public void Collect_AdviceWithUnsortedDuplicateAndInfiniteBounds_UsesFiniteSortedDistinctBounds()
    {
        var bounds = HistogramBuckets.Normalize([5, 1, double.PositiveInfinity, 1, double.NaN, 2]);

        Assert.Equal([1, 2, 5], bounds);
    }

    [Theory]
    [InlineData(-1, 0)]
    [InlineData(0.1, 0)]
    [InlineData(0.10000001, 1)]
    [InlineData(1, 1)]
    [InlineData(10, 2)]
    [InlineData(10.5, 3)]
    [InlineData(double.PositiveInfinity, 3)]
    public void BucketIndex_Value_IsFirstBucketWhoseBoundIsAtLeastTheValue(double value, int expected)
    {
        Assert.Equal(expected, HistogramAggregator.BucketIndex([0.1, 1, 10], value));
        // The binary search used for long bound lists agrees with a plain scan.
        double[] many = [0.1, 1, 10, .. Enumerable.Range(1, 20).Select(i => 100.0 * i)];
        Assert.Equal(many.TakeWhile(bound => value > bound).Count(), HistogramAggregator.BucketIndex(many, value));
    }

    [Fact]
    public void Collect_MetersOfOtherFactoriesOrOtherNames_AreIgnored()
    {
        using var services = new TelemetryServices();
        using var other = new TelemetryServices();
        using var unscoped = new Meter("LlmProxy.Unscoped");
        other.MeterFactory.Create("LlmProxy.Test").CreateCounter<long>("test.elsewhere").Add(1);
        unscoped.CreateCounter<long>("test.unscoped").Add(1);
        services.MeterFactory.Create("NotLlmProxy").CreateCounter<long>("test.foreign").Add(1);
        services.MeterFactory.Create("LlmProxy.Test").CreateCounter<long>("test.mine", "{x}", "Mine.").Add(1);

        var scrape = services.Scrape();

        Assert.True(scrape.Has("test_mine_total"));
        Assert.DoesNotContain("test_elsewhere", scrape.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("test_unscoped", scrape.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("test_foreign", scrape.Text, StringComparison.Ordinal);
    }

    [Fact]
    public void Collect_TwoInstrumentsWithOnePrometheusNameButDifferentTypes_ExposesOneAndWarns()
    {
        using var services = new TelemetryServices();
        var meter = services.MeterFactory.Create("LlmProxy.Test");
        meter.CreateUpDownCounter<long>("test.thing", "{x}", "As a gauge.").Add(1);
        meter.CreateGauge<long>("test_thing", "{x}", "Also a gauge.").Record(2);
        meter.CreateHistogram<double>("test.thing", "{x}", "As a histogram.").Record(1);

        var scrape = services.Scrape();

        Assert.Single(scrape.Types, t => t.Key == "test_thing");
        Assert.Contains(services.Logs.Entries, e => e.EventId.Id == 7002);
    }

    [Fact]
    public void Collect_Always_IncludesProcessAndRuntimeMetrics()
    {
        using var services = new TelemetryServices();

        var scrape = services.Scrape();

        Assert.True(scrape.Value("process_resident_memory_bytes") > 0);
        Assert.Equal("counter", scrape.Types["process_cpu_seconds_total"]);
        Assert.True(scrape.Value("process_cpu_seconds_total") > 0);
        var start = scrape.Value("process_start_time_seconds");
        Assert.InRange(start, DateTimeOffset.UtcNow.AddDays(-1).ToUnixTimeSeconds(), DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1);
        Assert.True(scrape.Has("dotnet_gc_collections_total{generation=\"gen0\"}"));
        Assert.True(scrape.Has("dotnet_gc_collections_total{generation=\"gen1\"}"));
        Assert.True(scrape.Has("dotnet_gc_collections_total{generation=\"gen2\"}"));
        Assert.True(scrape.Has("dotnet_gc_heap_size_bytes"));
        Assert.True(scrape.Value("dotnet_threadpool_threads") >= 1);
        Assert.True(scrape.Value("dotnet_threadpool_queue_length") >= 0);
    }

    [Fact]
    public void Collect_AfterMeterDisposed_DropsItsMetrics()
    {
        using var services = new TelemetryServices();
        // A meter of the application's factory (same scope) that is disposed on its own, as a feature shutting down would.
        var meter = new Meter(new MeterOptions("LlmProxy.Disposable") { Scope = services.MeterFactory });
        meter.CreateCounter<long>("test.gone", "{x}", "Gone.").Add(1);
        Assert.True(services.Scrape().Has("test_gone_total"));

        meter.Dispose();

        Assert.False(services.Scrape().Has("test_gone_total"));
    }

    [Fact]
    public void Record_KnownTagSet_DoesNotAllocate()
    {
        using var services = new TelemetryServices();
        var meter = services.MeterFactory.Create("LlmProxy.Test");
        var counter = meter.CreateCounter<long>("test.hot", "{x}", "Hot path.");
        var histogram = meter.CreateHistogram<double>("test.hot.duration", "s", "Hot path.");
        void RecordBoth()
        {
            var tags = new TagList { { "tenant", "acme" }, { "model", "gpt-4o" }, { "provider", "openai" }, { "deployment", "d1" }, { "status_class", "2xx" }, { "stream", "false" } };
            counter.Add(1, tags);
            histogram.Record(0.42, tags);
        }
        RecordBoth(); // creates the series

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++)
        {
            RecordBoth();
        }
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
        Assert.Equal(10_001, services.Scrape().Value("test_hot_total{deployment=\"d1\",model=\"gpt-4o\",provider=\"openai\",status_class=\"2xx\",stream=\"false\",tenant=\"acme\"}"));
    }

    [Fact]
    public async Task Record_ConcurrentlyFromManyThreads_LosesNoMeasurement()
    {
        using var services = new TelemetryServices();
        var meter = services.MeterFactory.Create("LlmProxy.Test");
        var counter = meter.CreateCounter<long>("test.concurrent", "{x}", "Concurrent.");
        var sum = meter.CreateCounter<double>("test.concurrent.double", "{x}", "Concurrent doubles.");
        var histogram = meter.CreateHistogram<double>("test.concurrent.duration", "s", "Concurrent.");
        const int Threads = 4;
        const int PerThread = 50_000;

        await Task.WhenAll(Enumerable.Range(0, Threads).Select(t => Task.Run(() =>
        {
            for (var i = 0; i < PerThread; i++)
            {
                var tag = new KeyValuePair<string, object?>("shard", (i % 3).ToString(System.Globalization.CultureInfo.InvariantCulture));
                counter.Add(1, tag);
                sum.Add(0.5, tag);
                histogram.Record(1, tag);
            }
        }, TestContext.Current.CancellationToken)));
        var scrape = services.Scrape();

        var total = new[] { "0", "1", "2" }.Sum(s => scrape.Value($"test_concurrent_total{{shard=\"{s}\"}}"));
        Assert.Equal(Threads * PerThread, total);
        Assert.Equal(Threads * PerThread * 0.5, new[] { "0", "1", "2" }.Sum(s => scrape.Value($"test_concurrent_double_total{{shard=\"{s}\"}}")));
        Assert.Equal(Threads * PerThread, new[] { "0", "1", "2" }.Sum(s => scrape.Value($"test_concurrent_duration_seconds_count{{shard=\"{s}\"}}")));
    }
}
