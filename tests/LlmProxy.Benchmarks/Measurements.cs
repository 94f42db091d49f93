using System.Diagnostics;
using System.Globalization;

namespace LlmProxy.Benchmarks;

/// <summary>Latency samples of one scenario, collected across interleaved rounds.</summary>
internal sealed class Measurements(string name)
{
    private readonly List<double> _milliseconds = [];

    public string Name { get; } = name;

    public void Add(TimeSpan elapsed) => _milliseconds.Add(elapsed.TotalMilliseconds);

    public double Percentile(double p)
    {
        var sorted = _milliseconds.Order().ToArray();
        if (sorted.Length == 0)
        {
            return double.NaN;
        }
        var rank = (int)Math.Ceiling(p / 100 * sorted.Length) - 1;
        return sorted[Math.Clamp(rank, 0, sorted.Length - 1)];
    }

    public double Mean => _milliseconds.Count == 0 ? double.NaN : _milliseconds.Average();

    public int Count => _milliseconds.Count;

    public static async Task<TimeSpan> TimeAsync(Func<Task> action)
    {
        var started = Stopwatch.GetTimestamp();
        await action();
        return Stopwatch.GetElapsedTime(started);
    }

    public static string Ms(double value) => value.ToString("F3", CultureInfo.InvariantCulture);
}
