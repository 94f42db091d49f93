using System.Diagnostics.Metrics;

namespace LlmProxy.Metering;

/// <summary>
/// Instruments of the metering feature on the gateway's meter (<c>LlmProxy</c>):
/// <list type="bullet">
/// <item><c>llmproxy.cost</c> (USD): cost of served requests, by tenant, model and provider.</item>
/// <item><c>llmproxy.usage_ledger.queue_depth</c> ({record}): records accepted and not yet in the store (queued, buffered for retry).</item>
/// <item><c>llmproxy.usage_ledger.spilled</c> ({record}): records written to the spill file because the store could not take them.</item>
/// <item><c>llmproxy.usage_ledger.write_errors</c> ({error}): failed store writes (each batch attempt counts once).</item>
/// <item><c>llmproxy.usage_ledger.dropped</c> ({record}): records lost because neither the store nor the spill file took them.</item>
/// <item><c>llmproxy.pricing.missing</c> ({request}): requests whose model has no price, by model.</item>
/// </list>
/// </summary>
internal sealed class MeteringMetrics
{
    public const string MeterName = "LlmProxy";

    private readonly Counter<double> _cost;
    private readonly Counter<long> _spilled;
    private readonly Counter<long> _writeErrors;
    private readonly Counter<long> _dropped;
    private readonly Counter<long> _priceMissing;
    private Func<long>? _queueDepth;

    public MeteringMetrics(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        var meter = meterFactory.Create(MeterName);
        _cost = meter.CreateCounter<double>("llmproxy.cost", "USD", "Cost of chat completion requests, from the price table.");
        meter.CreateObservableGauge("llmproxy.usage_ledger.queue_depth", () => _queueDepth?.Invoke() ?? 0, "{record}",
            "Usage records accepted and not yet written to the usage store.");
        _spilled = meter.CreateCounter<long>("llmproxy.usage_ledger.spilled", "{record}", "Usage records written to the local spill file because the store could not take them.");
        _writeErrors = meter.CreateCounter<long>("llmproxy.usage_ledger.write_errors", "{error}", "Failed writes of a batch of usage records to the store.");
        _dropped = meter.CreateCounter<long>("llmproxy.usage_ledger.dropped", "{record}", "Usage records lost: neither the store nor the spill file took them.");
        _priceMissing = meter.CreateCounter<long>("llmproxy.pricing.missing", "{request}", "Requests whose model has no price in the price table.");
    }

    /// <summary>Where the queue depth gauge reads from; set once by the ledger.</summary>
    public void ObserveQueueDepth(Func<long> depth) => _queueDepth = depth;

    public void Cost(string tenant, string? model, string? provider, decimal cost)
    {
        if (_cost.Enabled && cost > 0)
        {
            _cost.Add((double)cost,
                new KeyValuePair<string, object?>("tenant", tenant),
                new KeyValuePair<string, object?>("model", model ?? "unknown"),
                new KeyValuePair<string, object?>("provider", provider ?? "unknown"));
        }
    }

    public void Spilled(int count)
    {
        if (_spilled.Enabled && count > 0)
        {
            _spilled.Add(count);
        }
    }

    public void WriteError()
    {
        if (_writeErrors.Enabled)
        {
            _writeErrors.Add(1);
        }
    }

    public void Dropped(int count)
    {
        if (_dropped.Enabled && count > 0)
        {
            _dropped.Add(count);
        }
    }

    public void PriceMissing(string model)
    {
        if (_priceMissing.Enabled)
        {
            _priceMissing.Add(1, new KeyValuePair<string, object?>("model", model));
        }
    }
}
