using Microsoft.Extensions.Options;

namespace LlmProxy.Caching.Memory;

/// <summary>
/// The default store: entries in this process, bounded by <see cref="MemoryResponseCacheOptions.MaxBytes"/> with
/// least-recently-used eviction (each entry costs its value, its key and a fixed overhead). Expiry is checked on
/// read against the injected <see cref="TimeProvider"/>; expired entries also leave through LRU eviction. All
/// operations complete synchronously under one short lock.
/// </summary>
internal sealed class MemoryResponseCacheStore : IResponseCacheStore
{
    /// <summary>Approximate bytes of bookkeeping per entry (node, entry object, dictionary slot).</summary>
    internal const int EntryOverhead = 96;

    private readonly Lock _lock = new();
    private readonly Dictionary<string, LinkedListNode<Entry>> _entries = new(StringComparer.Ordinal);
    private readonly LinkedList<Entry> _recency = new();
    private readonly TimeProvider _time;
    private readonly long _maxBytes;
    private long _size;

    public MemoryResponseCacheStore(IOptions<ResponseCacheOptions> options, TimeProvider time)
        : this(options.Value.Memory.MaxBytes, time)
    {
    }

    internal MemoryResponseCacheStore(long maxBytes, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxBytes);
        ArgumentNullException.ThrowIfNull(time);
        _maxBytes = maxBytes;
        _time = time;
    }

    /// <summary>Bytes currently accounted to entries.</summary>
    public long Size
    {
        get
        {
            lock (_lock)
            {
                return _size;
            }
        }
    }

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    public ValueTask<byte[]?> GetAsync(string key, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        var now = _time.GetUtcNow().UtcTicks;
        lock (_lock)
        {
            if (!_entries.TryGetValue(key, out var node))
            {
                return ValueTask.FromResult<byte[]?>(null);
            }
            if (node.Value.ExpiresAtTicks <= now)
            {
                RemoveNode(node);
                return ValueTask.FromResult<byte[]?>(null);
            }
            if (node != _recency.First)
            {
                _recency.Remove(node);
                _recency.AddFirst(node);
            }
            return ValueTask.FromResult<byte[]?>(node.Value.Value);
        }
    }

    public ValueTask SetAsync(string key, byte[] value, TimeSpan validFor, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        if (validFor <= TimeSpan.Zero)
        {
            return ValueTask.CompletedTask;
        }
        var cost = Cost(key, value);
        var expires = _time.GetUtcNow().UtcTicks + validFor.Ticks;
        lock (_lock)
        {
            if (_entries.TryGetValue(key, out var existing))
            {
                RemoveNode(existing);
            }
            if (cost > _maxBytes)
            {
                // Could never fit: storing it would only flush everything else.
                return ValueTask.CompletedTask;
            }
            var node = _recency.AddFirst(new Entry(key, value, expires, cost));
            _entries[key] = node;
            _size += cost;
            while (_size > _maxBytes && _recency.Last is { } last)
            {
                RemoveNode(last);
            }
        }
        return ValueTask.CompletedTask;
    }

    internal static long Cost(string key, byte[] value) => value.LongLength + (key.Length * 2L) + EntryOverhead;

    private void RemoveNode(LinkedListNode<Entry> node)
    {
        _recency.Remove(node);
        _entries.Remove(node.Value.Key);
        _size -= node.Value.Cost;
    }

    private sealed record Entry(string Key, byte[] Value, long ExpiresAtTicks, long Cost);
}
