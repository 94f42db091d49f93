using System.Collections.Concurrent;

namespace LlmProxy.Telemetry;

/// <summary>
/// The series of one instrument, keyed by tag set. A measurement whose tags are already known costs a copy of
/// the tags into a per-thread buffer, a sort by key and a lock-free dictionary lookup: no allocation. Only a
/// new tag set allocates (its key, its series, its rendered labels), under a lock.
/// <para>
/// Cardinality guard: after <c>limit</c> distinct tag sets, new tag sets are folded into one series whose label
/// values are all <see cref="OverflowValue"/>, and the owner is told once (it logs a warning).
/// </para>
/// </summary>
internal sealed class SeriesTable<TSeries> where TSeries : Series
{
    public const string OverflowValue = "other";

    private readonly ConcurrentDictionary<TagSet, TSeries> _series = new(TagSetComparer.Instance);
    private readonly Func<string, bool, TSeries> _create;
    private readonly int _limit;
    private readonly Action _limitReached;
    private readonly Lock _lock = new();
    private TSeries? _untagged;
    private int _count;
    private OverflowSeries? _overflow;
    private bool _limitReported;

    /// <param name="create">Creates a series from its rendered labels and whether it is the overflow series.</param>
    /// <param name="limit">Most distinct tag sets before folding.</param>
    /// <param name="limitReached">Called once, the first time a tag set is folded.</param>
    public SeriesTable(Func<string, bool, TSeries> create, int limit, Action limitReached)
    {
        _create = create;
        _limit = Math.Max(1, limit);
        _limitReached = limitReached;
    }

    public TSeries Get(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (tags.IsEmpty)
        {
            return Volatile.Read(ref _untagged) ?? AddUntagged();
        }
        var buffer = TagBuffer.Rent(tags.Length);
        tags.CopyTo(buffer);
        TagBuffer.SortByKey(buffer.AsSpan(0, tags.Length));
        var key = new TagSet(buffer, tags.Length);
        return _series.TryGetValue(key, out var series) ? series : Add(key);
    }

    /// <summary>Every series, the overflow series included. Safe while measurements are recorded.</summary>
    public IEnumerable<TSeries> All()
    {
        if (Volatile.Read(ref _untagged) is { } untagged)
        {
            yield return untagged;
        }
        foreach (var pair in _series)
        {
            yield return pair.Value;
        }
    }

    /// <summary>Forgets every series (observable instruments start each collection afresh).</summary>
    public void Clear()
    {
        lock (_lock)
        {
            _series.Clear();
            Volatile.Write(ref _untagged, null);
            Volatile.Write(ref _overflow, null);
            Volatile.Write(ref _count, 0);
        }
    }

    private TSeries AddUntagged()
    {
        lock (_lock)
        {
            if (_untagged is null)
            {
                var series = _create("", false);
                Volatile.Write(ref _count, _count + 1);
                Volatile.Write(ref _untagged, series);
            }
            return _untagged;
        }
    }

    private TSeries Add(TagSet key)
    {
        // Past the limit, the common case is one more measurement for the overflow series: skip the lock.
        if (Volatile.Read(ref _count) >= _limit && Volatile.Read(ref _overflow) is { } known && known.Matches(key))
        {
            return known.Series;
        }
        lock (_lock)
        {
            if (_series.TryGetValue(key, out var series))
            {
                return series;
            }
            if (_count >= _limit)
            {
                return AddOverflow(key);
            }
            var owned = key.Copy();
            series = _create(Render(owned), false);
            _series[owned] = series;
            Volatile.Write(ref _count, _count + 1);
            return series;
        }
    }

    private TSeries AddOverflow(TagSet key)
    {
        var keys = new string[key.Count];
        var tags = new KeyValuePair<string, object?>[key.Count];
        for (var i = 0; i < key.Count; i++)
        {
            keys[i] = key.Tags[i].Key;
            tags[i] = new(keys[i], OverflowValue);
        }
        var overflowKey = new TagSet(tags, tags.Length);
        if (!_series.TryGetValue(overflowKey, out var series))
        {
            series = _create(Render(overflowKey), true);
            _series[overflowKey] = series;
        }
        Volatile.Write(ref _overflow, new OverflowSeries(keys, series));
        if (!_limitReported)
        {
            _limitReported = true;
            _limitReached();
        }
        return series;
    }

    private static string Render(TagSet tags)
    {
        var labels = new KeyValuePair<string, string>[tags.Count];
        for (var i = 0; i < tags.Count; i++)
        {
            labels[i] = new(tags.Tags[i].Key, PrometheusLabels.ValueText(tags.Tags[i].Value));
        }
        return PrometheusLabels.Render(labels);
    }

    private sealed class OverflowSeries(string[] keys, TSeries series)
    {
        public TSeries Series { get; } = series;

        public bool Matches(TagSet tags)
        {
            if (tags.Count != keys.Length)
            {
                return false;
            }
            for (var i = 0; i < keys.Length; i++)
            {
                if (!string.Equals(tags.Tags[i].Key, keys[i], StringComparison.Ordinal))
                {
                    return false;
                }
            }
            return true;
        }
    }
}

/// <summary>A tag set sorted by key, with its hash computed once. Lookups wrap the thread's buffer; stored keys own a copy.</summary>
internal readonly struct TagSet
{
    public TagSet(KeyValuePair<string, object?>[] tags, int count)
        : this(tags, count, ComputeHash(tags, count))
    {
    }

    private TagSet(KeyValuePair<string, object?>[] tags, int count, int hash)
    {
        Tags = tags;
        Count = count;
        Hash = hash;
    }

    public KeyValuePair<string, object?>[] Tags { get; }
    public int Count { get; }
    public int Hash { get; }

    public TagSet Copy() => new(Tags.AsSpan(0, Count).ToArray(), Count, Hash);

    private static int ComputeHash(KeyValuePair<string, object?>[] tags, int count)
    {
        var hash = new HashCode();
        for (var i = 0; i < count; i++)
        {
            // Key sets rarely differ between the series of one instrument; values carry the entropy. Hashing the
            // key's length instead of its characters saves work on every measurement; equality still compares keys.
            hash.Add(tags[i].Key.Length);
            hash.Add(tags[i].Value);
        }
        return hash.ToHashCode();
    }
}

internal sealed class TagSetComparer : IEqualityComparer<TagSet>
{
    public static readonly TagSetComparer Instance = new();

    public bool Equals(TagSet x, TagSet y)
    {
        if (x.Count != y.Count || x.Hash != y.Hash)
        {
            return false;
        }
        for (var i = 0; i < x.Count; i++)
        {
            var a = x.Tags[i];
            var b = y.Tags[i];
            if (!string.Equals(a.Key, b.Key, StringComparison.Ordinal) || !Equals(a.Value, b.Value))
            {
                return false;
            }
        }
        return true;
    }

    public int GetHashCode(TagSet obj) => obj.Hash;
}

internal static class TagBuffer
{
    [ThreadStatic]
    private static KeyValuePair<string, object?>[]? t_buffer;

    /// <summary>The calling thread's scratch buffer for tags, at least <paramref name="length"/> long.</summary>
    public static KeyValuePair<string, object?>[] Rent(int length)
    {
        var buffer = t_buffer;
        if (buffer is null || buffer.Length < length)
        {
            t_buffer = buffer = new KeyValuePair<string, object?>[Math.Max(16, length)];
        }
        return buffer;
    }

    /// <summary>Insertion sort by key: tag sets are short and usually already in order.</summary>
    public static void SortByKey(Span<KeyValuePair<string, object?>> tags)
    {
        for (var i = 1; i < tags.Length; i++)
        {
            var current = tags[i];
            var j = i - 1;
            while (j >= 0 && string.CompareOrdinal(tags[j].Key, current.Key) > 0)
            {
                tags[j + 1] = tags[j];
                j--;
            }
            tags[j + 1] = current;
        }
    }
}
