namespace LlmProxy.RateLimiting;

/// <summary>
/// An exact sliding-window log: every admission is kept with its time and amount (1 for a request, its tokens for a
/// token reservation) until it is a whole window old. The total is therefore exactly what was admitted in the last
/// window, not an interpolation, and the wait until an amount fits is read off the log. Times are in the units of the
/// caller's clock (<see cref="TimeProvider.GetTimestamp"/>), never wall-clock time, so clock adjustments do not matter.
/// Not thread-safe: the owning store serializes access.
/// </summary>
internal sealed class SlidingWindowLog
{
    private readonly long _window;
    private readonly Queue<Entry> _entries = new();
    private readonly Dictionary<string, Entry> _byId = new(StringComparer.Ordinal);
    private Entry? _newest;

    /// <param name="window">Length of the window, in clock units.</param>
    public SlidingWindowLog(long window)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(window, 1);
        _window = window;
    }

    /// <summary>Sum of the amounts in the window (as of the last <see cref="Evict"/>).</summary>
    public long Total { get; private set; }

    /// <summary>Entries in the window (as of the last <see cref="Evict"/>).</summary>
    public int Count => _entries.Count;

    /// <summary>Drops the entries that are a whole window old at <paramref name="now"/>: an entry added at t counts while now - t &lt; window.</summary>
    public void Evict(long now)
    {
        while (_entries.TryPeek(out var oldest) && oldest.At <= now - _window)
        {
            _entries.Dequeue();
            Total -= oldest.Amount;
            if (oldest.Id is not null)
            {
                _byId.Remove(oldest.Id);
            }
        }
        if (_entries.Count == 0)
        {
            _newest = null;
            Total = 0;
        }
    }

    /// <summary>
    /// Time (clock units) until <paramref name="amount"/> more fits under <paramref name="limit"/> if nothing else is
    /// added: 0 when it fits now; null when it never can (it is more than the limit on its own).
    /// </summary>
    public long? WaitFor(long now, long amount, long limit)
    {
        if (amount > limit)
        {
            return null;
        }
        var excess = Total + amount - limit;
        if (excess <= 0)
        {
            return 0;
        }
        long freed = 0;
        foreach (var entry in _entries)
        {
            freed += entry.Amount;
            if (freed >= excess)
            {
                return Math.Max(0, entry.At + _window - now);
            }
        }
        return _window; // unreachable: the whole window frees Total >= excess
    }

    /// <summary>Time (clock units) until the window is empty, i.e. until the full limit is available again.</summary>
    public long UntilEmpty(long now) => _newest is null ? 0 : Math.Max(0, _newest.At + _window - now);

    public void Add(long now, long amount, string? id = null)
    {
        // A clock never runs backwards here (monotonic timestamps); keep the log ordered even if one did.
        var at = _newest is { } newest && newest.At > now ? newest.At : now;
        var entry = new Entry(at, amount, id);
        _entries.Enqueue(entry);
        _newest = entry;
        Total += amount;
        if (id is not null)
        {
            _byId[id] = entry;
        }
    }

    /// <summary>Changes the amount of the entry added under <paramref name="id"/>, keeping its time. False when it has left the window.</summary>
    public bool TryAdjust(string id, long amount)
    {
        if (!_byId.TryGetValue(id, out var entry))
        {
            return false;
        }
        Total += amount - entry.Amount;
        entry.Amount = amount;
        return true;
    }

    private sealed class Entry(long at, long amount, string? id)
    {
        public long At { get; } = at;
        public long Amount { get; set; } = amount;
        public string? Id { get; } = id;
    }
}
