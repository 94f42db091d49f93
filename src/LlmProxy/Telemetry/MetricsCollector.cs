using System.Diagnostics.Metrics;
using System.Text;
using Microsoft.Extensions.Options;

namespace LlmProxy.Telemetry;

/// <summary>
/// Aggregates the measurements of the gateway's meters (those created through the application's
/// <see cref="IMeterFactory"/> whose name starts with <see cref="MeterNamePrefix"/>) and writes them, with
/// process and runtime basics, in the Prometheus text format. It listens from construction on, so it must be
/// created at startup (<c>MapLlmProxyMetrics</c> does) or measurements made before it existed are lost.
/// <para>
/// Meters of other service providers in the same process (test hosts, a second gateway) are ignored: a meter
/// belongs to the factory that created it (<see cref="Meter.Scope"/>).
/// </para>
/// </summary>
internal sealed partial class MetricsCollector : IDisposable
{
    public const string MeterNamePrefix = "LlmProxy";

    private readonly IMeterFactory _meterFactory;
    private readonly ILogger<MetricsCollector> _logger;
    private readonly int _maxSeriesPerMetric;
    private readonly MeterListener _listener;
    private readonly Lock _instrumentsLock = new();
    private readonly Dictionary<Instrument, MetricAggregator> _aggregators = [];
    private readonly Lock _scrapeLock = new();
    private readonly HashSet<Instrument> _reportedConflicts = [];
    private int _lastScrapeLength = 16 * 1024;

    public MetricsCollector(IMeterFactory meterFactory, IOptions<MetricsOptions> options, ILogger<MetricsCollector> logger)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        _meterFactory = meterFactory;
        _logger = logger;
        _maxSeriesPerMetric = Math.Max(1, options.Value.MaxSeriesPerMetric);

        _listener = new MeterListener
        {
            InstrumentPublished = OnInstrumentPublished,
            MeasurementsCompleted = OnMeasurementsCompleted,
        };
        _listener.SetMeasurementEventCallback<long>(static (_, value, tags, state) => ((MetricAggregator)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<int>(static (_, value, tags, state) => ((MetricAggregator)state!).Record((long)value, tags));
        _listener.SetMeasurementEventCallback<short>(static (_, value, tags, state) => ((MetricAggregator)state!).Record((long)value, tags));
        _listener.SetMeasurementEventCallback<byte>(static (_, value, tags, state) => ((MetricAggregator)state!).Record((long)value, tags));
        _listener.SetMeasurementEventCallback<double>(static (_, value, tags, state) => ((MetricAggregator)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<float>(static (_, value, tags, state) => ((MetricAggregator)state!).Record((double)value, tags));
        _listener.SetMeasurementEventCallback<decimal>(static (_, value, tags, state) => ((MetricAggregator)state!).Record((double)value, tags));
        _listener.Start();
    }

    /// <summary>A scrape: the current values of every series, then the process and runtime metrics.</summary>
    public string Collect()
    {
        var output = new StringBuilder(Volatile.Read(ref _lastScrapeLength) + 1024);
        WriteTo(output);
        Volatile.Write(ref _lastScrapeLength, output.Length);
        return output.ToString();
    }

    public void WriteTo(StringBuilder output)
    {
        ArgumentNullException.ThrowIfNull(output);
        // One scrape at a time: observable instruments report into state that each scrape resets.
        lock (_scrapeLock)
        {
            MetricAggregator[] aggregators;
            lock (_instrumentsLock)
            {
                aggregators = [.. _aggregators.Values];
            }

            foreach (var aggregator in aggregators)
            {
                aggregator.BeginObservation();
            }
            try
            {
                _listener.RecordObservableInstruments();
            }
            catch (Exception ex)
            {
                // Every instrument was still asked; only the failing callbacks are missing from this scrape.
                LogObservationFailed(_logger, ex);
            }

            var families = new Dictionary<string, MetricFamily>(StringComparer.Ordinal);
            var ordered = aggregators
                .OrderBy(a => a.Name, StringComparer.Ordinal)
                .ThenBy(a => a.Instrument.Meter.Name, StringComparer.Ordinal)
                .ThenBy(a => a.Instrument.Name, StringComparer.Ordinal);
            foreach (var aggregator in ordered)
            {
                if (RuntimeMetrics.Names.Contains(aggregator.Name))
                {
                    ReportConflict(aggregator);
                    continue;
                }
                if (!families.TryGetValue(aggregator.Name, out var family))
                {
                    family = new MetricFamily(aggregator.Name, aggregator.Type, aggregator.Help, aggregator.Bounds);
                    families.Add(aggregator.Name, family);
                }
                else if (family.Type != aggregator.Type || !family.Bounds.AsSpan().SequenceEqual(aggregator.Bounds ?? []))
                {
                    // Two instruments that map to one Prometheus name can share it only if they mean the same kind of thing.
                    ReportConflict(aggregator);
                    continue;
                }
                aggregator.Collect(family);
            }

            var writer = new PrometheusTextWriter(output);
            foreach (var family in families.Values.OrderBy(f => f.Name, StringComparer.Ordinal))
            {
                family.Normalize();
                writer.WriteFamily(family);
            }
            RuntimeMetrics.Write(writer);
        }
    }

    public void Dispose() => _listener.Dispose();

    private void OnInstrumentPublished(Instrument instrument, MeterListener listener)
    {
        var meter = instrument.Meter;
        if (!ReferenceEquals(meter.Scope, _meterFactory) || !meter.Name.StartsWith(MeterNamePrefix, StringComparison.Ordinal))
        {
            return;
        }
        var aggregator = MetricAggregator.Create(instrument, _maxSeriesPerMetric, OnSeriesLimitReached);
        if (aggregator is null)
        {
            return;
        }
        lock (_instrumentsLock)
        {
            _aggregators[instrument] = aggregator;
        }
        listener.EnableMeasurementEvents(instrument, aggregator);
    }

    private void OnMeasurementsCompleted(Instrument instrument, object? state)
    {
        // The meter was disposed (its service provider is going away): its series go with it.
        lock (_instrumentsLock)
        {
            _aggregators.Remove(instrument);
        }
    }

    private void OnSeriesLimitReached(MetricAggregator aggregator) =>
        LogSeriesLimitReached(_logger, aggregator.Name, _maxSeriesPerMetric, SeriesTable<Series>.OverflowValue);

    private void ReportConflict(MetricAggregator aggregator)
    {
        if (_reportedConflicts.Add(aggregator.Instrument))
        {
            LogNameConflict(_logger, aggregator.Instrument.Name, aggregator.Instrument.Meter.Name, aggregator.Name);
        }
    }

    [LoggerMessage(EventId = 7001, Level = LogLevel.Warning,
        Message = "Metric {Metric} reached its limit of {Limit} label sets; new label sets are counted in one series whose label values are '{Overflow}'. A label is probably taking unbounded values")]
    private static partial void LogSeriesLimitReached(ILogger logger, string metric, int limit, string overflow);

    [LoggerMessage(EventId = 7002, Level = LogLevel.Warning,
        Message = "Instrument {Instrument} of meter {Meter} is not exposed: its Prometheus name {Metric} is taken by a metric of another type or buckets")]
    private static partial void LogNameConflict(ILogger logger, string instrument, string meter, string metric);

    [LoggerMessage(EventId = 7003, Level = LogLevel.Warning, Message = "An observable instrument failed to report its value during a scrape")]
    private static partial void LogObservationFailed(ILogger logger, Exception exception);
}
