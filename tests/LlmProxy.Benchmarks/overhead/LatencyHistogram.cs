namespace LlmProxy.Benchmarks.Overhead;

/// <summary>
/// Latencies in whole microseconds with their counts, merged across rounds before percentiles are taken (a
/// percentile of the merged samples, not an average of per-round percentiles).
/// </summary>
internal sealed class LatencyHistogram
{
    private readonly SortedDictionary<long, long> _counts = [];

    public long Count { get; private set; }

    public void Add(long microseconds, long count = 1)
    {
        _counts[microseconds] = _counts.GetValueOrDefault(microseconds) + count;
        Count += count;
    }

    public void CopyTo(LatencyHistogram other)
    {
        foreach (var (microseconds, count) in _counts)
        {
            other.Add(microseconds, count);
        }
    }

    public void Add(TimeSpan elapsed) => Add((long)Math.Round(elapsed.TotalMicroseconds));

    /// <summary>The smallest latency that at least <paramref name="percent"/> % of the samples do not exceed, in ms.</summary>
    public double PercentileMs(double percent)
    {
        if (Count == 0)
        {
            return double.NaN;
        }
        var rank = Math.Max(1, (long)Math.Ceiling(percent / 100 * Count));
        long seen = 0;
        foreach (var (microseconds, count) in _counts)
        {
            seen += count;
            if (seen >= rank)
            {
                return microseconds / 1000.0;
            }
        }
        return _counts.Keys.Last() / 1000.0;
    }
}
