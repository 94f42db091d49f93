using System.Threading.Channels;
using Microsoft.Extensions.Options;

namespace LlmProxy.Metering;

/// <summary>
/// Where requests leave their usage records: a bounded in-memory queue drained by <see cref="UsageLedgerWriter"/>.
/// <see cref="Append"/> never blocks and never throws; when the queue is full (the writer is stuck in a slow store call) or
/// closed (shutting down), the record goes straight to the spill file instead.
/// </summary>
internal sealed partial class UsageLedger
{
    private readonly Channel<UsageRecord> _channel;
    private readonly UsageSpillFile _spill;
    private readonly MeteringMetrics _metrics;
    private readonly ILogger<UsageLedger> _logger;
    private int _overflowing;

    public UsageLedger(IOptions<MeteringOptions> options, UsageSpillFile spill, MeteringMetrics metrics, ILogger<UsageLedger> logger)
    {
        _channel = Channel.CreateBounded<UsageRecord>(new BoundedChannelOptions(options.Value.QueueCapacity)
        {
            SingleReader = true,
            SingleWriter = false,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _spill = spill;
        _metrics = metrics;
        _logger = logger;
    }

    public ChannelReader<UsageRecord> Reader => _channel.Reader;

    /// <summary>Records queued and not yet taken by the writer.</summary>
    public int Count => _channel.Reader.Count;

    public void Append(UsageRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (_channel.Writer.TryWrite(record))
        {
            if (Volatile.Read(ref _overflowing) == 1)
            {
                Interlocked.Exchange(ref _overflowing, 0);
            }
            return;
        }
        if (Interlocked.Exchange(ref _overflowing, 1) == 0)
        {
            LogOverflow(_logger, _spill.ActivePath);
        }
        try
        {
            _spill.Append([record]);
            _metrics.Spilled(1);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _metrics.Dropped(1);
            LogDropped(_logger, record.RequestId, ex);
        }
    }

    /// <summary>Closes the queue at shutdown: what is queued is still drained; later records are spilled.</summary>
    public void Complete() => _channel.Writer.TryComplete();

    [LoggerMessage(EventId = 7301, Level = LogLevel.Warning, Message = "Usage ledger: queue full or closed; records go straight to the spill file {Path}")]
    private static partial void LogOverflow(ILogger logger, string path);

    [LoggerMessage(EventId = 7302, Level = LogLevel.Error, Message = "Usage ledger: record of request {RequestId} lost: the queue is full and the spill file cannot be written")]
    private static partial void LogDropped(ILogger logger, string requestId, Exception exception);
}
