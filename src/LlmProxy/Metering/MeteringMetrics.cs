using System.Diagnostics.Metrics;
using LlmProxy.Telemetry;

namespace LlmProxy.Metering;

/// <summary>
/// Instruments of the metering feature on the gateway's meter (<c>LlmProxy</c>). The ones the metrics exposition
/// already declares are recorded through <see cref="GatewayMetrics"/> (one instrument per name on the meter):
/// <list type="bullet">
/// <item><c>llmproxy.cost.usd</c> (USD): cost of requests, by tenant, model and provider.</item>
/// <item><c>llmproxy.usage_ledger.queue_depth</c> ({record}): records accepted and not yet in the store (queued or buffered for retry).</item>
/// <item><c>llmproxy.usage_ledger.spilled</c> ({record}): records written to the spill file because the store could not take them.</item>
/// <item><c>llmproxy.usage_ledger.write_errors</c> ({error}): failed store writes (each batch attempt counts once), by store.</item>
/// </list>
/// and the metering feature adds:
/// <list type="bullet">
/// <item><c>llmproxy.pricing.missing</c> ({request}): requests with tokens whose model has no price, by model.</item>
/// <item><c>llmproxy.usage_ledger.dropped</c> ({record}): records lost because neither the store nor the spill file took them.</item>
/// </list>
/// </summary>
internal sealed class MeteringMetrics
{
    private readonly GatewayMetrics _gateway;
    private readonly Counter<long> _dropped;
    private readonly Counter<long> _priceMissing;

    public MeteringMetrics(IMeterFactory meterFactory, GatewayMetrics gateway)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        ArgumentNullException.ThrowIfNull(gateway);
        _gateway = gateway;
        var meter = meterFactory.Create(GatewayMetrics.MeterName);
        _dropped = meter.CreateCounter<long>("llmproxy.usage_ledger.dropped", "{record}",
            "Usage records lost: neither the usage store nor the spill file took them.");
        _priceMissing = meter.CreateCounter<long>("llmproxy.pricing.missing", "{request}",
            "Requests with tokens whose model has no price in the pricing file (their cost is unknown), by model.");
    }

    /// <summary>Where the queue depth gauge reads from; set once by the ledger writer.</summary>
    public void ObserveQueueDepth(Func<long> depth) => _gateway.SetUsageLedgerQueueDepthSource(depth);

    /// <param name="model">A bounded model label (<see cref="MetricLabels.Model"/>).</param>
    public void Cost(string tenant, string model, string? provider, decimal cost) =>
        _gateway.RecordCost(tenant, model, provider ?? MetricLabels.None, cost);

    public void Spilled(int count) => _gateway.RecordUsageLedgerSpilled(count);

    public void WriteError(string store) => _gateway.RecordUsageLedgerWriteError(store);

    public void Dropped(int count)
    {
        if (count > 0 && _dropped.Enabled)
        {
            _dropped.Add(count);
        }
    }

    /// <param name="model">The upstream model id (bounded by the configured deployments) or the routed model name.</param>
    public void PriceMissing(string model)
    {
        if (_priceMissing.Enabled)
        {
            _priceMissing.Add(1, new KeyValuePair<string, object?>("model", model));
        }
    }
}
