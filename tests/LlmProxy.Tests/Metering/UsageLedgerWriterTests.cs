using System.Diagnostics;
using LlmProxy.Metering;
using LlmProxy.Tests.Telemetry;

namespace LlmProxy.Tests.Metering;

public sealed class UsageLedgerWriterTests : IDisposable
{
    private readonly TempDirectory _directory = new();
    private readonly FakeTimeProvider _time = new(MeteringTestData.Start);
    private readonly FakeUsageStore _store = new();

    public void Dispose() => _directory.Dispose();

    private (UsageLedger Ledger, UsageLedgerWriter Writer, UsageSpillFile Spill) Create(Action<MeteringOptions>? configure = null, MeteringMetrics? metrics = null)
    {
        var options = MeteringTestData.Options(o =>
        {
            o.BatchSize = 100;
            o.RetryInitialDelay = TimeSpan.FromMilliseconds(500);
            o.RetryMaxDelay = TimeSpan.FromSeconds(4);
            configure?.Invoke(o);
        });
        metrics ??= MeteringTestData.Metrics();
        var spill = new UsageSpillFile(_directory.Path, MeteringTestData.Log<UsageSpillFile>());
        var ledger = new UsageLedger(options, spill, metrics, MeteringTestData.Log<UsageLedger>());
        var writer = new UsageLedgerWriter(ledger, _store, spill, options, _time, metrics, MeteringTestData.Log<UsageLedgerWriter>());
        return (ledger, writer, spill);
    }

    private static void Append(UsageLedger ledger, int from, int count)
    {
        for (var i = from; i < from + count; i++)
        {
            ledger.Append(MeteringTestData.Record(i));
        }
    }

    private void AssertExactlyOnce(int count)
    {
        var ids = _store.Records.Select(r => r.RequestId).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(Enumerable.Range(0, count).Select(i => $"req_{i:D6}").ToArray(), ids);
    }

    [Fact]
    public async Task PumpAsync_StoreUp_WritesEveryRecordInBatches()
    {
        var (ledger, writer, _) = Create();
        Append(ledger, 0, 250);

        await writer.PumpAsync(CancellationToken.None);

        AssertExactlyOnce(250);
        Assert.Equal(3, _store.WriteCalls);
        Assert.True(writer.IsDrained);
    }

    [Fact]
    public async Task PumpAsync_StoreDown_RetriesOnlyWhenTheBackoffHasPassedAndDoublesIt()
    {
        var (ledger, writer, _) = Create();
        await writer.PumpAsync(CancellationToken.None); // initializes while the store is up
        _store.Down = true;
        Append(ledger, 0, 10);

        await writer.PumpAsync(CancellationToken.None);
        Assert.Equal(1, _store.WriteCalls);
        Assert.True(writer.StoreState.Down);

        await writer.PumpAsync(CancellationToken.None);
        _time.Advance(TimeSpan.FromMilliseconds(499));
        await writer.PumpAsync(CancellationToken.None);
        Assert.Equal(1, _store.WriteCalls);

        _time.Advance(TimeSpan.FromMilliseconds(1));
        await writer.PumpAsync(CancellationToken.None);
        Assert.Equal(2, _store.WriteCalls);

        // Second failure: the wait doubles to 1 s.
        _time.Advance(TimeSpan.FromMilliseconds(999));
        await writer.PumpAsync(CancellationToken.None);
        Assert.Equal(2, _store.WriteCalls);

        _store.Down = false;
        _time.Advance(TimeSpan.FromMilliseconds(1));
        await writer.PumpAsync(CancellationToken.None);
        Assert.Equal(3, _store.WriteCalls);
        Assert.False(writer.StoreState.Down);
        AssertExactlyOnce(10);
    }

    [Fact]
    public async Task PumpAsync_StoreDownFromTheStart_BackoffCappedAtRetryMaxDelay()
    {
        var (ledger, writer, _) = Create();
        _store.Down = true;
        Append(ledger, 0, 1);
        for (var i = 0; i < 10; i++)
        {
            await writer.PumpAsync(CancellationToken.None);
            _time.Advance(TimeSpan.FromSeconds(4));
        }
        Assert.True(writer.StoreState.Down);
        Assert.Empty(_store.Records);

        // Uncapped, the wait would now be minutes; capped at 4 s, the next pump after 4 s tries again.
        _store.Down = false;
        _time.Advance(TimeSpan.FromSeconds(4));
        await writer.PumpAsync(CancellationToken.None);

        AssertExactlyOnce(1);
    }

    [Fact]
    public async Task PumpAsync_StoreDownPastTheBuffer_SpillsThenReplaysNoneLostNoneDuplicated()
    {
        var (ledger, writer, spill) = Create(o => o.BufferCapacity = 50);
        await writer.PumpAsync(CancellationToken.None);
        _store.Down = true;

        Append(ledger, 0, 120);
        await writer.PumpAsync(CancellationToken.None);
        Append(ledger, 120, 80);
        await writer.PumpAsync(CancellationToken.None);

        Assert.Equal(50, writer.Pending);
        Assert.Equal(150, spill.Appended);
        Assert.Equal(150, File.ReadLines(Path.Combine(_directory.Path, UsageSpillFile.FileName)).Count());
        Assert.Empty(_store.Records);

        _store.Down = false;
        _time.Advance(TimeSpan.FromSeconds(1));
        await writer.PumpAsync(CancellationToken.None);

        AssertExactlyOnce(200);
        Assert.Equal(200, _store.Writes.Count);
        Assert.True(writer.IsDrained);
        Assert.False(File.Exists(Path.Combine(_directory.Path, UsageSpillFile.FileName)));
        Assert.False(File.Exists(Path.Combine(_directory.Path, UsageSpillFile.ReplayFileName)));
    }

    [Fact]
    public async Task PumpAsync_StoreDownPastTheBuffer_ScrapeCountsSpilledRecordsAndFailedWrites()
    {
        using var telemetry = new TelemetryServices();
        var metrics = new MeteringMetrics(telemetry.MeterFactory, telemetry.Metrics);
        var (ledger, writer, _) = Create(o => o.BufferCapacity = 50, metrics);
        await writer.PumpAsync(CancellationToken.None);
        _store.Down = true;

        Append(ledger, 0, 120);
        await writer.PumpAsync(CancellationToken.None); // one failed write; 70 beyond the buffer spilled
        Append(ledger, 120, 80);
        await writer.PumpAsync(CancellationToken.None); // retry not due: no write; 80 more spilled
        _time.Advance(TimeSpan.FromMilliseconds(500));
        await writer.PumpAsync(CancellationToken.None); // the retry fails too
        var down = telemetry.Scrape();

        _store.Down = false;
        _time.Advance(TimeSpan.FromSeconds(1));
        await writer.PumpAsync(CancellationToken.None);
        var back = telemetry.Scrape();

        Assert.Equal(150, down.Value("llmproxy_usage_ledger_spilled_total"));
        Assert.Equal(2, down.Value("llmproxy_usage_ledger_write_errors_total{store=\"fake\"}"));
        Assert.Equal(50, down.Value("llmproxy_usage_ledger_queue_depth"));
        // Replaying the spill file is not spilling again, and successful writes are not errors.
        AssertExactlyOnce(200);
        Assert.Equal(150, back.Value("llmproxy_usage_ledger_spilled_total"));
        Assert.Equal(2, back.Value("llmproxy_usage_ledger_write_errors_total{store=\"fake\"}"));
        Assert.Equal(0, back.Value("llmproxy_usage_ledger_queue_depth"));
    }

    [Fact]
    public async Task PumpAsync_PartialBatchThenRetry_EveryRecordLandsOnce()
    {
        var (ledger, writer, _) = Create();
        await writer.PumpAsync(CancellationToken.None);
        _store.Down = true;
        _store.PartialWriteCount = 30;
        Append(ledger, 0, 100);

        await writer.PumpAsync(CancellationToken.None);
        Assert.Equal(30, _store.Records.Count);

        _store.Down = false;
        _time.Advance(TimeSpan.FromSeconds(1));
        await writer.PumpAsync(CancellationToken.None);

        // 130 writes reached the store, 100 records are in it: the retry rewrote 30 keys, which stay single.
        Assert.Equal(130, _store.Writes.Count);
        AssertExactlyOnce(100);
    }

    [Fact]
    public async Task PumpAsync_ReplayFailsHalfway_ResumesWhereItStoppedAndLandsEachOnce()
    {
        var (ledger, writer, _) = Create(o => o.BufferCapacity = 1);
        await writer.PumpAsync(CancellationToken.None);
        _store.Down = true;
        Append(ledger, 0, 301);
        await writer.PumpAsync(CancellationToken.None); // 1 buffered, 300 spilled

        // Back for the buffered record and the first spilled batch, then failing on the second.
        _store.Down = false;
        var before = _store.WriteCalls;
        _store.FailCall = call => call == before + 3;
        _time.Advance(TimeSpan.FromSeconds(1));
        await writer.PumpAsync(CancellationToken.None);
        Assert.Equal(101, _store.Records.Count);
        Assert.True(File.Exists(Path.Combine(_directory.Path, UsageSpillFile.ReplayFileName)));

        _store.FailCall = null;
        _time.Advance(TimeSpan.FromSeconds(5));
        await writer.PumpAsync(CancellationToken.None);

        AssertExactlyOnce(301);
        Assert.Equal(301, _store.Writes.Count); // the replay resumed after the landed batch instead of starting over
        Assert.True(writer.IsDrained);
    }

    [Fact]
    public async Task StopAsync_StoreUp_FlushesEverythingAccepted()
    {
        var (ledger, writer, _) = Create();
        await writer.StartAsync(CancellationToken.None);
        Append(ledger, 0, 300);

        await writer.StopAsync(CancellationToken.None);

        AssertExactlyOnce(300);
        Assert.True(writer.IsDrained);
    }

    [Fact]
    public async Task StopAsync_StoreDown_SpillsEverythingAndTheNextStartReplaysIt()
    {
        var (ledger, writer, spill) = Create();
        _store.Down = true;
        await writer.StartAsync(CancellationToken.None);
        Append(ledger, 0, 120);
        await writer.StopAsync(CancellationToken.None);

        Assert.Empty(_store.Records);
        Assert.Equal(120, spill.Appended);

        // Records of requests still finishing after the stop go to the spill file too.
        ledger.Append(MeteringTestData.Record(120));
        Assert.Equal(121, spill.Appended);

        _store.Down = false;
        var (_, next, _) = Create();
        await next.PumpAsync(CancellationToken.None);

        AssertExactlyOnce(121);
        Assert.True(next.IsDrained);
    }

    [Fact]
    public void Append_QueueFull_SpillsStraightAway()
    {
        var (ledger, writer, spill) = Create(o => o.QueueCapacity = 5);

        Append(ledger, 0, 8);

        Assert.Equal(5, ledger.Count);
        Assert.Equal(3, spill.Appended);
        Assert.Equal(5, writer.Pending);
    }

    [Fact]
    public async Task ExecuteAsync_StoreFails_RetriesOnlyAsTheClockPassesTheBackoff()
    {
        var (ledger, writer, _) = Create();
        await writer.StartAsync(CancellationToken.None);
        await WaitUntilAsync(() => _store.InitializeCalls == 1 && writer.IsDrained);
        _store.Down = true;

        ledger.Append(MeteringTestData.Record(0));
        await _store.WaitForWriteCallsAsync(1);
        _store.Down = false;
        Assert.Empty(_store.Records);

        // Nothing but the clock wakes the writer for its retry: move it in 100 ms steps until the record lands.
        var start = _time.GetUtcNow();
        await WaitUntilAsync(() =>
        {
            if (_store.WriteCalls < 2)
            {
                _time.Advance(TimeSpan.FromMilliseconds(100));
            }
            return _store.WriteCalls >= 2;
        });

        Assert.True(_time.GetUtcNow() - start >= TimeSpan.FromMilliseconds(500), $"retried after {(_time.GetUtcNow() - start).TotalMilliseconds} ms of clock time");
        AssertExactlyOnce(1);
        await writer.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task QueueDepthGauge_ReportsPendingRecords()
    {
        var services = new Microsoft.Extensions.DependencyInjection.ServiceCollection();
        Microsoft.Extensions.DependencyInjection.MetricsServiceExtensions.AddMetrics(services);
        var factory = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions
            .GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(Microsoft.Extensions.DependencyInjection.ServiceCollectionContainerBuilderExtensions.BuildServiceProvider(services));
        using var collector = new MeasurementCollector(factory, "llmproxy.usage_ledger.queue_depth");
        var metrics = new MeteringMetrics(factory, new LlmProxy.Telemetry.GatewayMetrics(factory));
        var options = MeteringTestData.Options();
        var spill = new UsageSpillFile(_directory.Path, MeteringTestData.Log<UsageSpillFile>());
        var ledger = new UsageLedger(options, spill, metrics, MeteringTestData.Log<UsageLedger>());
        var writer = new UsageLedgerWriter(ledger, _store, spill, options, _time, metrics, MeteringTestData.Log<UsageLedgerWriter>());

        Append(ledger, 0, 7);
        collector.RecordObservable();
        Assert.Equal(7, collector.Last());

        await writer.PumpAsync(CancellationToken.None);
        collector.RecordObservable();
        Assert.Equal(0, collector.Last());
    }

    /// <summary>Yields until <paramref name="condition"/> holds (the background loop runs on the thread pool); no wall-clock sleeps.</summary>
    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(10), "condition not reached");
            await Task.Yield();
        }
    }
}
