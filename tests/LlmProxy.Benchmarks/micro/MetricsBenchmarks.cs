using BenchmarkDotNet.Attributes;
using LlmProxy.Pipeline;
using LlmProxy.Telemetry;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;

namespace LlmProxy.Benchmarks.Micro;

/// <summary>
/// The metrics of one request as the gateway records them (request count and duration, token usage, time to first
/// token, one upstream attempt, cost, a cache lookup) with the /metrics pipeline listening (OpenTelemetry's SDK), and
/// one scrape through OpenTelemetry's Prometheus exporter middleware, as <c>/metrics</c> serves it.
/// </summary>
[MemoryDiagnoser]
public class MetricsBenchmarks
{
    private static readonly TokenUsage Usage = new(120, 340, 460);
    private ServiceProvider _services = null!;
    private GatewayMetrics _metrics = null!;
    private RequestDelegate _scrape = null!;
    private DefaultHttpContext _context = null!;
    private MemoryStream _body = null!;
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
        var meterProvider = _services.GetRequiredService<MeterProvider>();
        _services.GetRequiredService<IStartupValidator>().Validate(); // starts the IMeterFactory subscriptions, as a host does
        _metrics = _services.GetRequiredService<GatewayMetrics>();
        var app = new ApplicationBuilder(_services);
        app.UseOpenTelemetryPrometheusScrapingEndpoint(meterProvider, predicate: _ => true, path: null, configureBranchedPipeline: null, optionsName: null);
        _scrape = app.Build();
        _body = new MemoryStream();
        _context = new DefaultHttpContext { RequestServices = _services };
        _context.Request.Method = "GET";
        _context.Request.Path = "/metrics";
        _context.Response.Body = _body;
        _tenants = Enumerable.Range(0, Tenants).Select(i => "tenant-" + i).ToArray();
        foreach (var tenant in _tenants)
        {
            RecordRequest(tenant);
        }
        Scrape().GetAwaiter().GetResult();
        var text = System.Text.Encoding.UTF8.GetString(_body.ToArray());
        if (!text.Contains("llmproxy_requests_total{", StringComparison.Ordinal) || !text.Contains("tenant=\"" + _tenants[^1] + "\"", StringComparison.Ordinal))
        {
            throw new InvalidOperationException("The scrape does not report the recorded requests:\n" + text);
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _services.Dispose();

    [Benchmark(Description = "record one request's metrics")]
    public void RecordOneRequest() => RecordRequest(_tenants[0]);

    [Benchmark(Description = "scrape /metrics")]
    public async Task<long> Scrape()
    {
        _body.SetLength(0);
        await _scrape(_context);
        return _body.Length;
    }

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
