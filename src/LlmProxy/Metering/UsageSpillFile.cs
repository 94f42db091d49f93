using System.Buffers;
using System.Text.Json;

namespace LlmProxy.Metering;

/// <summary>
/// The local, append-only overflow of the usage ledger: records the store could not take, one JSON object per line, in
/// <c>usage-spill.jsonl</c> under the data directory. Replay first renames it to <c>usage-spill.replaying.jsonl</c> (new
/// records keep going to a fresh file), writes it to the store batch by batch, and deletes it once every line has landed.
/// A replay cut short resumes where it stopped (or, after a restart, from the start: writes are idempotent, so records
/// written twice still land once). Appends are flushed to disk before they return.
/// </summary>
internal sealed partial class UsageSpillFile
{
    public const string FileName = "usage-spill.jsonl";
    public const string ReplayFileName = "usage-spill.replaying.jsonl";

    private readonly Lock _gate = new();
    private readonly string _directory;
    private readonly string _active;
    private readonly string _replay;
    private readonly ILogger _logger;
    private long _replayOffset;
    private bool _hasRecords;
    private bool _checkedTail;

    public UsageSpillFile(string directory, ILogger<UsageSpillFile> logger)
    {
        _directory = directory;
        _active = Path.Combine(directory, FileName);
        _replay = Path.Combine(directory, ReplayFileName);
        _logger = logger;
        _hasRecords = File.Exists(_replay) || (File.Exists(_active) && new FileInfo(_active).Length > 0);
    }

    public string ActivePath => _active;

    /// <summary>Whether spilled records wait for replay (from this process or an earlier one).</summary>
    public bool HasRecords
    {
        get
        {
            lock (_gate)
            {
                return _hasRecords;
            }
        }
    }

    /// <summary>Records appended since the process started (for tests and diagnostics).</summary>
    public long Appended { get; private set; }

    /// <summary>Appends <paramref name="records"/> and flushes them to disk. Throws when the file cannot be written.</summary>
    public void Append(IReadOnlyCollection<UsageRecord> records)
    {
        if (records.Count == 0)
        {
            return;
        }
        var buffer = new ArrayBufferWriter<byte>(records.Count * 512);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            foreach (var record in records)
            {
                JsonSerializer.Serialize(writer, record, MeteringJsonContext.Default.UsageRecord);
                writer.Flush();
                buffer.Write("\n"u8);
                writer.Reset(buffer);
            }
        }
        lock (_gate)
        {
            Directory.CreateDirectory(_directory);
            using var stream = new FileStream(_active, FileMode.Append, FileAccess.Write, FileShare.Read, bufferSize: 1);
            if (!_checkedTail)
            {
                // A crash in the middle of an append leaves a partial last line: start ours on a new one.
                EndPartialLine(stream);
                _checkedTail = true;
            }
            stream.Write(buffer.WrittenSpan);
            stream.Flush(flushToDisk: true);
            _hasRecords = true;
            Appended += records.Count;
        }
    }

    /// <summary>
    /// Writes every spilled record through <paramref name="write"/> in batches of <paramref name="batchSize"/>. Returns true
    /// when all have landed (the files are gone), false when a write failed (the rest stays for the next replay).
    /// </summary>
    public async Task<bool> ReplayAsync(Func<IReadOnlyList<UsageRecord>, CancellationToken, Task<bool>> write, int batchSize, CancellationToken cancellationToken)
    {
        while (true)
        {
            lock (_gate)
            {
                if (!File.Exists(_replay))
                {
                    if (!File.Exists(_active) || new FileInfo(_active).Length == 0)
                    {
                        File.Delete(_active);
                        _hasRecords = false;
                        return true;
                    }
                    File.Move(_active, _replay);
                    _replayOffset = 0;
                    _checkedTail = false;
                }
            }

            if (!await ReplayFileAsync(write, batchSize, cancellationToken))
            {
                return false;
            }
            lock (_gate)
            {
                File.Delete(_replay);
                _replayOffset = 0;
            }
            LogReplayed(_logger, _replay);
        }
    }

    private async Task<bool> ReplayFileAsync(Func<IReadOnlyList<UsageRecord>, CancellationToken, Task<bool>> write, int batchSize, CancellationToken cancellationToken)
    {
        await using var stream = new FileStream(_replay, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, useAsync: true);
        stream.Seek(_replayOffset, SeekOrigin.Begin);
        var batch = new List<UsageRecord>(batchSize);
        var chunk = new byte[64 * 1024];
        var line = new ArrayBufferWriter<byte>(1024);
        var position = _replayOffset;
        var batchEnd = position;
        int read;
        while ((read = await stream.ReadAsync(chunk, cancellationToken)) > 0)
        {
            var start = 0;
            while (start < read)
            {
                var newline = Array.IndexOf(chunk, (byte)'\n', start, read - start);
                if (newline < 0)
                {
                    line.Write(chunk.AsSpan(start, read - start));
                    position += read - start;
                    break;
                }
                line.Write(chunk.AsSpan(start, newline - start));
                position += newline - start + 1;
                start = newline + 1;
                if (Parse(line.WrittenSpan) is { } record)
                {
                    batch.Add(record);
                }
                line.ResetWrittenCount();
                batchEnd = position;
                if (batch.Count >= batchSize)
                {
                    if (!await write(batch, cancellationToken))
                    {
                        return false;
                    }
                    _replayOffset = batchEnd;
                    batch = new List<UsageRecord>(batchSize);
                }
            }
        }
        if (line.WrittenCount > 0 && Parse(line.WrittenSpan) is { } last)
        {
            batch.Add(last);
        }
        if (batch.Count > 0)
        {
            if (!await write(batch, cancellationToken))
            {
                return false;
            }
        }
        _replayOffset = position;
        return true;
    }

    private UsageRecord? Parse(ReadOnlySpan<byte> line)
    {
        line = line.TrimEnd("\r "u8);
        if (line.IsEmpty)
        {
            return null;
        }
        try
        {
            return JsonSerializer.Deserialize(line, MeteringJsonContext.Default.UsageRecord);
        }
        catch (JsonException ex)
        {
            // Only a crash in the middle of an append produces this: one record is lost, the others are kept.
            LogBadLine(_logger, _replay, ex.Message);
            return null;
        }
    }

    private static void EndPartialLine(FileStream stream)
    {
        if (stream.Length == 0)
        {
            return;
        }
        using var reader = new FileStream(stream.Name, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 1);
        reader.Seek(-1, SeekOrigin.End);
        if (reader.ReadByte() != '\n')
        {
            stream.WriteByte((byte)'\n');
        }
    }

    [LoggerMessage(EventId = 7201, Level = LogLevel.Information, Message = "Usage ledger: spill file {Path} replayed into the store")]
    private static partial void LogReplayed(ILogger logger, string path);

    [LoggerMessage(EventId = 7202, Level = LogLevel.Warning, Message = "Usage ledger: skipped an unreadable line of {Path}: {Problem}")]
    private static partial void LogBadLine(ILogger logger, string path, string problem);
}
