using BenchmarkDotNet.Attributes;
using LlmProxy.Pipeline;
using LlmProxy.Telemetry;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace LlmProxy.Benchmarks.Micro;

/// <summary>
/// The metrics of one request as the gateway records them (request count and duration, token usage, time to first
/// token, one upstream attempt, cost, a cache lookup) with the /metrics pipeline listening, and one scrape.
/// </summary>
[MemoryDiagnoser]
public class MetricsBenchmarks
{
    private static readonly TokenUsage Usage = new(120, 340, 460);
    private ServiceProvider _services = null!;
    private GatewayMetrics _metrics = null!;
    private MetricsCollector _collector = null!;
    private string[] _tenants = null!;

    /// <summary>Tenants the scrape reports on: each adds a label set to every family (about 100 series per tenant).</summary>
    [Params(10, 100)]
    public int Tenants { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddLlmProxyTelemetry(new ConfigurationBuilder().Build());
        _services = services.BuildServiceProvider();
        _collector = _services.GetRequiredService<MetricsCollector>();
        _metrics = _services.GetRequiredService<GatewayMetrics>();
        _tenants = Enumerable.Range(0, Tenants).Select(i => "tenant-" + i).ToArray();
        foreach (var tenant in _tenants)
        {
            RecordRequest(tenant);
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _services.Dispose();

    [Benchmark(Description = "record one request's metrics")]
    public void RecordOneRequest() => RecordRequest(_tenants[0]);

    [Benchmark(Description = "scrape /metrics")]
    public int Scrape() => _collector.Collect().Length;

    private void RecordRequest(string tenant)
    {
        _metrics.RecordRequestCompleted(new RequestOutcome(tenant, "gpt-4o-mini", "openai", "gpt-4o-mini-east", 200, Stream: true, TimeSpan.FromMilliseconds(830))
        {
            Usage = Usage,
            TimeToFirstToken = TimeSpan.FromMilliseconds(210),
        });
        _metrics.RecordUpstreamAttempt("gpt-4o-mini-east", "openai", "gpt-4o-mini", UpstreamOutcomes.Success, TimeSpan.FromMilliseconds(800));
        _metrics.RecordCost(tenant, "gpt-4o-mini", "openai", 0.000222m);
        _metrics.RecordCacheRequest(tenant, "gpt-4o-mini", CacheResult.Miss);
    }
}
