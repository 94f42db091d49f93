using Microsoft.Extensions.Options;

namespace LlmProxy.Metering;

/// <summary>
/// Moves usage records from the <see cref="UsageLedger"/> queue into the <see cref="IUsageStore"/>, off the request path.
/// <para>
/// Guarantees. Every record accepted by <see cref="UsageLedger.Append"/> ends up in the store exactly once, or, while the
/// store cannot be reached, in the spill file, which is replayed into the store once it is back: records are written in
/// batches, a failed batch is retried with exponential backoff (<see cref="MeteringOptions.RetryInitialDelay"/> doubling up
/// to <see cref="MeteringOptions.RetryMaxDelay"/>), and stores write idempotently by record key, so a batch written twice
/// (a timeout after a partial write, a replay) still lands once. Graceful shutdown drains the queue into the store or, if
/// the store is down or the shutdown timeout runs out, into the spill file.
/// </para>
/// <para>
/// Limits. Records in memory are lost if the process dies without a graceful shutdown (kill -9, out of memory): at most
/// <see cref="MeteringOptions.QueueCapacity"/> + <see cref="MeteringOptions.BufferCapacity"/> of them, usually a handful.
/// A crash in the middle of a spill append can lose that one record. A record is also lost when the store is down and the
/// spill file cannot be written either (disk full); that is counted as <c>llmproxy.usage_ledger.dropped</c> and logged.
/// </para>
/// </summary>
internal sealed partial class UsageLedgerWriter : BackgroundService
{
    private readonly UsageLedger _ledger;
    private readonly IUsageStore _store;
    private readonly UsageSpillFile _spill;
    private readonly MeteringOptions _options;
    private readonly TimeProvider _time;
    private readonly MeteringMetrics _metrics;
    private readonly ILogger<UsageLedgerWriter> _logger;
    private readonly SemaphoreSlim _pumpGate = new(1, 1);
    private readonly Queue<UsageRecord> _buffer = new();
    private int _bufferCount;
    private bool _initialized;
    private bool _storeDown;
    private DateTimeOffset _downSince;
    private TimeSpan _backoff;
    private DateTimeOffset _retryAt;
    private string? _lastError;

    public UsageLedgerWriter(UsageLedger ledger, IUsageStore store, UsageSpillFile spill, IOptions<MeteringOptions> options, TimeProvider time,
        MeteringMetrics metrics, ILogger<UsageLedgerWriter> logger)
    {
        _ledger = ledger;
        _store = store;
        _spill = spill;
        _options = options.Value;
        _time = time;
        _metrics = metrics;
        _logger = logger;
        metrics.ObserveQueueDepth(() => Pending);
    }

    /// <summary>Records accepted and not yet in the store or the spill file.</summary>
    public long Pending => _ledger.Count + Volatile.Read(ref _bufferCount);

    /// <summary>Nothing waits to be written: queue, retry buffer and spill file are empty.</summary>
    public bool IsDrained => Pending == 0 && !_spill.HasRecords;

    /// <summary>Whether the last store write (or initialization) failed; with the error, for health reporting.</summary>
    public (bool Down, DateTimeOffset Since, string? Error) StoreState => (Volatile.Read(ref _storeDown), _downSince, _lastError);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            do
            {
                await PumpAsync(stoppingToken);
            }
            while (await WaitAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        // From here on, records of requests still finishing go straight to the spill file.
        _ledger.Complete();
        await base.StopAsync(cancellationToken);
        await FlushAsync(cancellationToken);
    }

    /// <summary>
    /// One round of work: takes what is queued, writes it (and then any spilled records) to the store unless the store is
    /// failing and its next retry is not due, and spills what exceeds the retry buffer.
    /// </summary>
    internal async Task PumpAsync(CancellationToken cancellationToken)
    {
        await _pumpGate.WaitAsync(cancellationToken);
        try
        {
            Take();
            if (_storeDown && _time.GetUtcNow() < _retryAt)
            {
                return;
            }
            if (!_initialized)
            {
                if (!await TryInitializeAsync(cancellationToken))
                {
                    return;
                }
            }
            while (_buffer.Count > 0)
            {
                var batch = _buffer.Take(_options.BatchSize).ToArray();
                if (!await TryWriteAsync(batch, cancellationToken))
                {
                    return;
                }
                for (var i = 0; i < batch.Length; i++)
                {
                    _buffer.Dequeue();
                }
                Volatile.Write(ref _bufferCount, _buffer.Count);
                Take();
            }
            if (_spill.HasRecords)
            {
                await _spill.ReplayAsync(TryWriteAsync, _options.BatchSize, cancellationToken);
            }
        }
        catch (Exception ex) when (!(ex is OperationCanceledException && cancellationToken.IsCancellationRequested))
        {
            // Reading the spill file failed, or a store threw where it should not: back off and try again, never stop.
            LogPumpFailed(_logger, ex);
            MarkDown(ex);
        }
        finally
        {
            _pumpGate.Release();
        }
    }

    /// <summary>
    /// Waits until there is something to do: new records, or the next retry of a failing store. Returns false when the
    /// queue has been closed and emptied.
    /// </summary>
    internal async Task<bool> WaitAsync(CancellationToken cancellationToken)
    {
        var retryDue = _buffer.Count > 0 || _spill.HasRecords || !_initialized;
        if (!retryDue)
        {
            return await _ledger.Reader.WaitToReadAsync(cancellationToken);
        }
        var wait = _storeDown ? _retryAt - _time.GetUtcNow() : TimeSpan.Zero;
        if (wait <= TimeSpan.Zero)
        {
            return true;
        }
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var records = _ledger.Reader.WaitToReadAsync(stop.Token).AsTask();
        var retry = Task.Delay(wait, _time, stop.Token);
        var first = await Task.WhenAny(records, retry);
        await stop.CancelAsync();
        cancellationToken.ThrowIfCancellationRequested();
        // A closed queue (shutdown) ends the loop; StopAsync flushes what is left.
        return first != records || (records.IsCompletedSuccessfully && records.Result);
    }

    /// <summary>
    /// At shutdown: everything queued or buffered goes to the store if it is up (until <paramref name="cancellationToken"/>
    /// fires), and whatever is left to the spill file.
    /// </summary>
    internal async Task FlushAsync(CancellationToken cancellationToken)
    {
        await _pumpGate.WaitAsync(CancellationToken.None);
        try
        {
            while (_ledger.Reader.TryRead(out var record))
            {
                _buffer.Enqueue(record);
            }
            if (!_storeDown || _time.GetUtcNow() >= _retryAt)
            {
                try
                {
                    if (!_initialized)
                    {
                        await TryInitializeAsync(cancellationToken);
                    }
                    while (_initialized && _buffer.Count > 0)
                    {
                        var batch = _buffer.Take(_options.BatchSize).ToArray();
                        if (!await TryWriteAsync(batch, cancellationToken))
                        {
                            break;
                        }
                        for (var i = 0; i < batch.Length; i++)
                        {
                            _buffer.Dequeue();
                        }
                    }
                }
                catch (OperationCanceledException)
                {
                    // Out of time: the rest is spilled below.
                }
            }
            if (_buffer.Count > 0)
            {
                var rest = _buffer.ToArray();
                _buffer.Clear();
                SpillOrDrop(rest);
                LogSpilledAtShutdown(_logger, rest.Length, _spill.ActivePath);
            }
            Volatile.Write(ref _bufferCount, 0);
        }
        finally
        {
            _pumpGate.Release();
        }
    }

    /// <summary>Moves queued records into the retry buffer; while the store is failing, what exceeds the buffer is spilled.</summary>
    private void Take()
    {
        List<UsageRecord>? overflow = null;
        while (_buffer.Count < _options.BufferCapacity && _ledger.Reader.TryRead(out var record))
        {
            _buffer.Enqueue(record);
        }
        if (_storeDown)
        {
            while (_ledger.Reader.TryRead(out var record))
            {
                (overflow ??= []).Add(record);
            }
        }
        Volatile.Write(ref _bufferCount, _buffer.Count);
        if (overflow is not null)
        {
            SpillOrDrop(overflow);
        }
    }

    private void SpillOrDrop(IReadOnlyCollection<UsageRecord> records)
    {
        try
        {
            _spill.Append(records);
            _metrics.Spilled(records.Count);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _metrics.Dropped(records.Count);
            LogDropped(_logger, records.Count, _spill.ActivePath, ex);
        }
    }

    private async Task<bool> TryInitializeAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _store.InitializeAsync(cancellationToken);
            _initialized = true;
            return true;
        }
        catch (Exception ex) when (!(ex is OperationCanceledException && cancellationToken.IsCancellationRequested))
        {
            MarkDown(ex);
            return false;
        }
    }

    private async Task<bool> TryWriteAsync(IReadOnlyList<UsageRecord> batch, CancellationToken cancellationToken)
    {
        try
        {
            await _store.WriteAsync(batch, cancellationToken);
        }
        catch (Exception ex) when (!(ex is OperationCanceledException && cancellationToken.IsCancellationRequested))
        {
            _metrics.WriteError(_store.Name);
            MarkDown(ex);
            return false;
        }
        if (_storeDown)
        {
            LogStoreBack(_logger, _store.Name, (_time.GetUtcNow() - _downSince).TotalSeconds);
            Volatile.Write(ref _storeDown, false);
            _lastError = null;
        }
        return true;
    }

    private void MarkDown(Exception ex)
    {
        var now = _time.GetUtcNow();
        if (!_storeDown)
        {
            _downSince = now;
            _backoff = _options.RetryInitialDelay;
            LogStoreDown(_logger, _store.Name, Pending, ex);
        }
        else
        {
            _backoff = TimeSpan.FromTicks(Math.Min(_backoff.Ticks * 2, _options.RetryMaxDelay.Ticks));
            LogStoreStillDown(_logger, _store.Name, Pending, _backoff.TotalSeconds, ex.Message);
        }
        _lastError = ex.Message;
        _retryAt = now + _backoff;
        Volatile.Write(ref _storeDown, true);
    }

    public override void Dispose()
    {
        _pumpGate.Dispose();
        base.Dispose();
    }

    [LoggerMessage(EventId = 7401, Level = LogLevel.Error, Message = "Usage ledger: store {Store} failed; {Pending} record(s) kept for retry, the overflow goes to the spill file")]
    private static partial void LogStoreDown(ILogger logger, string store, long pending, Exception exception);

    [LoggerMessage(EventId = 7402, Level = LogLevel.Warning, Message = "Usage ledger: store {Store} still failing ({Pending} record(s) pending, next retry in {RetrySeconds} s): {Error}")]
    private static partial void LogStoreStillDown(ILogger logger, string store, long pending, double retrySeconds, string error);

    [LoggerMessage(EventId = 7403, Level = LogLevel.Information, Message = "Usage ledger: store {Store} is back after {Seconds:F1} s")]
    private static partial void LogStoreBack(ILogger logger, string store, double seconds);

    [LoggerMessage(EventId = 7404, Level = LogLevel.Warning, Message = "Usage ledger: {Count} record(s) spilled to {Path} at shutdown; they are replayed at the next start")]
    private static partial void LogSpilledAtShutdown(ILogger logger, int count, string path);

    [LoggerMessage(EventId = 7406, Level = LogLevel.Error, Message = "Usage ledger: unexpected failure while writing; retrying later")]
    private static partial void LogPumpFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 7405, Level = LogLevel.Error, Message = "Usage ledger: {Count} record(s) lost: the store is down and the spill file {Path} cannot be written")]
    private static partial void LogDropped(ILogger logger, int count, string path, Exception exception);
}
