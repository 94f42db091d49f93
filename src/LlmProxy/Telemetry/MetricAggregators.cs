using System.Diagnostics.Metrics;

namespace LlmProxy.Telemetry;

/// <summary>
/// Aggregates the measurements of one instrument into series, the way Prometheus exposes it:
/// <list type="bullet">
/// <item><c>Counter</c>: a sum, exposed as a counter.</item>
/// <item><c>UpDownCounter</c>: a sum, exposed as a gauge.</item>
/// <item><c>Gauge</c>: the last value, exposed as a gauge.</item>
/// <item><c>ObservableCounter</c> (cumulative) / <c>ObservableUpDownCounter</c> / <c>ObservableGauge</c>: the value observed at
/// the scrape, exposed as a counter / gauge / gauge. Only what the callback reports at this scrape is exposed.</item>
/// <item><c>Histogram</c>: explicit buckets, sum and count.</item>
/// </list>
/// </summary>
internal abstract class MetricAggregator
{
    protected MetricAggregator(Instrument instrument, PrometheusMetricType type)
    {
        Instrument = instrument;
        Type = type;
        Name = PrometheusNames.MetricName(instrument.Name, instrument.Unit, type);
        Help = string.IsNullOrWhiteSpace(instrument.Description) ? instrument.Name : instrument.Description;
    }

    public Instrument Instrument { get; }
    public PrometheusMetricType Type { get; }

    /// <summary>The Prometheus family name.</summary>
    public string Name { get; }

    public string Help { get; }

    public virtual double[]? Bounds => null;

    public bool IsObservable => Instrument.IsObservable;

    public abstract void Record(long value, ReadOnlySpan<KeyValuePair<string, object?>> tags);

    public abstract void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags);

    /// <summary>Called before observable instruments are asked for their values.</summary>
    public virtual void BeginObservation()
    {
    }

    /// <summary>Adds a sample per series to <paramref name="family"/>.</summary>
    public abstract void Collect(MetricFamily family);

    /// <summary>The aggregator for <paramref name="instrument"/>, or null for an instrument kind it does not know.</summary>
    public static MetricAggregator? Create(Instrument instrument, int maxSeries, Action<MetricAggregator> limitReached)
    {
        var type = instrument.GetType();
        if (!type.IsGenericType)
        {
            return null;
        }
        var kind = type.GetGenericTypeDefinition();
        var valueType = type.GetGenericArguments()[0];
        var integral = valueType == typeof(long) || valueType == typeof(int) || valueType == typeof(short) || valueType == typeof(byte);

        if (kind == typeof(Counter<>))
        {
            return new SumAggregator(instrument, monotonic: true, integral, maxSeries, limitReached);
        }
        if (kind == typeof(UpDownCounter<>))
        {
            return new SumAggregator(instrument, monotonic: false, integral, maxSeries, limitReached);
        }
        if (kind == typeof(Histogram<>))
        {
            return new HistogramAggregator(instrument, HistogramBuckets.Resolve(instrument), maxSeries, limitReached);
        }
        if (kind == typeof(ObservableCounter<>))
        {
            return new LastValueAggregator(instrument, PrometheusMetricType.Counter, maxSeries, limitReached);
        }
        if (kind == typeof(Gauge<>) || kind == typeof(ObservableGauge<>) || kind == typeof(ObservableUpDownCounter<>))
        {
            return new LastValueAggregator(instrument, PrometheusMetricType.Gauge, maxSeries, limitReached);
        }
        return null;
    }
}

internal sealed class SumAggregator : MetricAggregator
{
    private readonly bool _monotonic;
    private readonly bool _integral;
    private readonly SeriesTable<SumSeries> _series;

    public SumAggregator(Instrument instrument, bool monotonic, bool integral, int maxSeries, Action<MetricAggregator> limitReached)
        : base(instrument, monotonic ? PrometheusMetricType.Counter : PrometheusMetricType.Gauge)
    {
        _monotonic = monotonic;
        _integral = integral;
        _series = new SeriesTable<SumSeries>(static (labels, overflow) => new SumSeries(labels, overflow), maxSeries, () => limitReached(this));
    }

    public override void Record(long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (_monotonic && value < 0)
        {
            return; // A counter only goes up; a negative delta is a caller bug and would break rate().
        }
        _series.Get(tags).Add(value);
    }

    public override void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (double.IsNaN(value) || (_monotonic && value < 0))
        {
            return;
        }
        _series.Get(tags).Add(value);
    }

    public override void Collect(MetricFamily family)
    {
        foreach (var series in _series.All())
        {
            family.Samples.Add(_integral
                ? MetricSample.Integer(series.Labels, series.IntegerSum)
                : new MetricSample(series.Labels, series.Sum + series.IntegerSum));
        }
    }
}

internal sealed class LastValueAggregator : MetricAggregator
{
    private readonly SeriesTable<LastValueSeries> _series;

    public LastValueAggregator(Instrument instrument, PrometheusMetricType type, int maxSeries, Action<MetricAggregator> limitReached)
        : base(instrument, type)
    {
        _series = new SeriesTable<LastValueSeries>(static (labels, overflow) => new LastValueSeries(labels, overflow), maxSeries, () => limitReached(this));
    }

    public override void Record(long value, ReadOnlySpan<KeyValuePair<string, object?>> tags) => Record((double)value, tags);

    public override void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var series = _series.Get(tags);
        if (IsObservable && series.IsOverflow)
        {
            // Observations arrive one collection at a time on the scraping thread: folded series add up.
            series.AddUnsafe(value);
        }
        else
        {
            series.Set(value);
        }
    }

    public override void BeginObservation()
    {
        if (IsObservable)
        {
            _series.Clear();
        }
    }

    public override void Collect(MetricFamily family)
    {
        foreach (var series in _series.All())
        {
            family.Samples.Add(new MetricSample(series.Labels, series.Value));
        }
    }
}

internal sealed class HistogramAggregator : MetricAggregator
{
    private readonly double[] _bounds;
    private readonly SeriesTable<HistogramSeries> _series;

    public HistogramAggregator(Instrument instrument, double[] bounds, int maxSeries, Action<MetricAggregator> limitReached)
        : base(instrument, PrometheusMetricType.Histogram)
    {
        _bounds = bounds;
        var bucketCount = bounds.Length + 1;
        _series = new SeriesTable<HistogramSeries>((labels, overflow) => new HistogramSeries(labels, overflow, bucketCount), maxSeries, () => limitReached(this));
    }

    public override double[] Bounds => _bounds;

    public override void Record(long value, ReadOnlySpan<KeyValuePair<string, object?>> tags) => Record((double)value, tags);

    public override void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (double.IsNaN(value))
        {
            return;
        }
        _series.Get(tags).Record(value, BucketIndex(_bounds, value));
    }

    public override void Collect(MetricFamily family)
    {
        foreach (var series in _series.All())
        {
            family.Samples.Add(MetricSample.Histogram(series.Labels, series.SnapshotBuckets(), series.Sum));
        }
    }

    /// <summary>The bucket of <paramref name="value"/>: the first whose upper bound is at least the value (Prometheus buckets are <c>le</c>, inclusive).</summary>
    internal static int BucketIndex(double[] bounds, double value)
    {
        if (bounds.Length <= 16)
        {
            var i = 0;
            while (i < bounds.Length && value > bounds[i])
            {
                i++;
            }
            return i;
        }
        var index = Array.BinarySearch(bounds, value);
        return index >= 0 ? index : ~index;
    }
}

/// <summary>One series of an instrument: its rendered labels and its state.</summary>
internal abstract class Series(string labels, bool isOverflow)
{
    public string Labels { get; } = labels;

    /// <summary>True for the series that collects the tag sets past the cardinality limit.</summary>
    public bool IsOverflow { get; } = isOverflow;

    protected static void AddDouble(ref double location, double value)
    {
        var current = Volatile.Read(ref location);
        while (true)
        {
            var seen = Interlocked.CompareExchange(ref location, current + value, current);
            // Compare bits, not values: NaN never equals itself and would spin forever.
            if (BitConverter.DoubleToInt64Bits(seen) == BitConverter.DoubleToInt64Bits(current))
            {
                return;
            }
            current = seen;
        }
    }
}

internal sealed class SumSeries(string labels, bool isOverflow) : Series(labels, isOverflow)
{
    private long _integerSum;
    private double _sum;

    public long IntegerSum => Interlocked.Read(ref _integerSum);
    public double Sum => Volatile.Read(ref _sum);

    public void Add(long value) => Interlocked.Add(ref _integerSum, value);

    public void Add(double value) => AddDouble(ref _sum, value);
}

internal sealed class LastValueSeries(string labels, bool isOverflow) : Series(labels, isOverflow)
{
    private double _value;

    public double Value => Volatile.Read(ref _value);

    public void Set(double value) => Volatile.Write(ref _value, value);

    /// <summary>Adds without synchronisation: only for observations, which one scrape at a time makes.</summary>
    public void AddUnsafe(double value) => _value += value;
}

internal sealed class HistogramSeries(string labels, bool isOverflow, int bucketCount) : Series(labels, isOverflow)
{
    private readonly long[] _buckets = new long[bucketCount];
    private double _sum;

    public double Sum => Volatile.Read(ref _sum);

    public void Record(double value, int bucket)
    {
        Interlocked.Increment(ref _buckets[bucket]);
        AddDouble(ref _sum, value);
    }

    /// <summary>
    /// Copies the bucket counts. The count written is their total, so the <c>+Inf</c> bucket and <c>_count</c> always
    /// agree; a measurement being recorded during the copy may be in the buckets and not yet in the sum, or the reverse.
    /// </summary>
    public long[] SnapshotBuckets()
    {
        var copy = new long[_buckets.Length];
        for (var i = 0; i < copy.Length; i++)
        {
            copy[i] = Interlocked.Read(ref _buckets[i]);
        }
        return copy;
    }
}
