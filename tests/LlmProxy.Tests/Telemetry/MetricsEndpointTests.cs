using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using LlmProxy.Configuration;
using LlmProxy.Telemetry;
using LlmProxy.Tenancy;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit;

namespace LlmProxy.Tests.Telemetry;

/// <summary>The endpoint on a real Kestrel server bound to loopback.</summary>
public sealed class MetricsEndpointTests
{
    private static async Task<WebApplication> StartAsync(Dictionary<string, string?>? settings = null, params int[] ports)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Configuration.AddInMemoryCollection(settings ?? []);
        builder.WebHost.UseUrls(ports.Length == 0 ? ["http://127.0.0.1:0"] : ports.Select(p => $"http://127.0.0.1:{p}").ToArray());
        builder.Logging.ClearProviders();
        builder.Services.AddLlmProxyTelemetry(builder.Configuration);
        var app = builder.Build();
        app.MapLlmProxyMetrics();
        await app.StartAsync(TestContext.Current.CancellationToken);
        return app;
    }

    private static HttpClient Client() => new(new SocketsHttpHandler { AutomaticDecompression = DecompressionMethods.None });

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    [Fact]
    public async Task Get_DefaultOptions_ReturnsFreshPrometheusTextWithGatewayAndRuntimeMetricsAndNoScopeOrTargetInfo()
    {
        await using var app = await StartAsync();
        app.Services.GetRequiredService<GatewayMetrics>().RecordFailover("gpt-4o", "d1", UpstreamOutcomes.Timeout);
        using var client = Client();

        using var response = await client.GetAsync(app.Urls.First() + "/metrics", TestContext.Current.CancellationToken);
        var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType!.MediaType);
        Assert.Contains(response.Content.Headers.ContentType.Parameters, p => p.Name == "version" && p.Value == "0.0.4");
        Assert.Equal("no-store", response.Headers.CacheControl!.ToString());
        var scrape = Scrape.Parse(body);
        Assert.Equal(1, scrape.Value("llmproxy_failovers_total{from_deployment=\"d1\",model=\"gpt-4o\",reason=\"timeout\"}"));
        Assert.True(scrape.Has("dotnet_process_cpu_time_seconds_total{cpu_mode=\"user\"}"));
        // Fresh at every scrape (no response cache), without the scope label and target_info.
        app.Services.GetRequiredService<GatewayMetrics>().RecordFailover("gpt-4o", "d1", UpstreamOutcomes.Timeout);
        using var again = await client.GetAsync(app.Urls.First() + "/metrics", TestContext.Current.CancellationToken);
        var second = Scrape.Parse(await again.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        Assert.Equal(2, second.Value("llmproxy_failovers_total{from_deployment=\"d1\",model=\"gpt-4o\",reason=\"timeout\"}"));
        Assert.DoesNotContain("otel_scope_name", body, StringComparison.Ordinal);
        Assert.DoesNotContain("target_info", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Get_KeyConfigured_RequiresMatchingBearerKey()
    {
        const string key = "sk-metrics-test-key";
        await using var app = await StartAsync(new() { ["LlmProxy:Metrics:ApiKeyHash"] = ApiKeyHasher.Hash(key).ToUpperInvariant() });
        using var client = Client();
        var url = app.Urls.First() + "/metrics";

        using var missing = await client.GetAsync(url, TestContext.Current.CancellationToken);
        using var wrongRequest = new HttpRequestMessage(HttpMethod.Get, url) { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", "sk-wrong") } };
        using var wrong = await client.SendAsync(wrongRequest, TestContext.Current.CancellationToken);
        using var rightRequest = new HttpRequestMessage(HttpMethod.Get, url) { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", key) } };
        using var right = await client.SendAsync(rightRequest, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.Unauthorized, missing.StatusCode);
        Assert.Equal("Bearer", missing.Headers.WwwAuthenticate.Single().Scheme);
        Assert.DoesNotContain("dotnet_", await missing.Content.ReadAsStringAsync(TestContext.Current.CancellationToken), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        Assert.Equal(HttpStatusCode.OK, right.StatusCode);
    }

    [Fact]
    public async Task Get_PortConfigured_ServedOnlyOnThatPortWhateverTheHostHeaderSays()
    {
        var publicPort = FreePort();
        var metricsPort = FreePort();
        await using var app = await StartAsync(new() { ["LlmProxy:Metrics:Port"] = metricsPort.ToString(System.Globalization.CultureInfo.InvariantCulture) },
            publicPort, metricsPort);
        using var client = Client();

        using var onMetricsPort = await client.GetAsync($"http://127.0.0.1:{metricsPort}/metrics", TestContext.Current.CancellationToken);
        using var onPublicPort = await client.GetAsync($"http://127.0.0.1:{publicPort}/metrics", TestContext.Current.CancellationToken);
        using var spoofed = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{publicPort}/metrics");
        spoofed.Headers.Host = $"127.0.0.1:{metricsPort}";
        using var onPublicPortSpoofed = await client.SendAsync(spoofed, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, onMetricsPort.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, onPublicPort.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, onPublicPortSpoofed.StatusCode);
    }

    [Fact]
    public async Task Get_AcceptsGzip_ReturnsGzippedScrape()
    {
        await using var app = await StartAsync();
        using var client = Client();
        using var request = new HttpRequestMessage(HttpMethod.Get, app.Urls.First() + "/metrics");
        request.Headers.AcceptEncoding.ParseAdd("gzip");

        using var response = await client.SendAsync(request, TestContext.Current.CancellationToken);
        await using var gzip = new GZipStream(await response.Content.ReadAsStreamAsync(TestContext.Current.CancellationToken), CompressionMode.Decompress);
        using var reader = new StreamReader(gzip);
        var body = await reader.ReadToEndAsync(TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("gzip", response.Content.Headers.ContentEncoding.Single());
        Assert.Contains("# TYPE dotnet_process_cpu_time_seconds_total counter\n", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Get_CustomPath_ServedThereAndNotAtDefault()
    {
        await using var app = await StartAsync(new() { ["LlmProxy:Metrics:Path"] = "/internal/prometheus" });
        using var client = Client();

        using var custom = await client.GetAsync(app.Urls.First() + "/internal/prometheus", TestContext.Current.CancellationToken);
        using var standard = await client.GetAsync(app.Urls.First() + "/metrics", TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, custom.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, standard.StatusCode);
    }

    [Fact]
    public async Task Map_Disabled_MapsNothingAndCollectsNothing()
    {
        await using var app = await StartAsync(new() { ["LlmProxy:Metrics:Enabled"] = "false" });
        using var client = Client();

        using var response = await client.GetAsync(app.Urls.First() + "/metrics", TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public void Map_InvalidOptions_ThrowsGatewayConfigurationExceptionListingEveryProblem()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["LlmProxy:Metrics:ApiKeyHash"] = "not-a-hash",
            ["LlmProxy:Metrics:Port"] = "70000",
            ["LlmProxy:Metrics:Path"] = "metrics",
            ["LlmProxy:Metrics:MaxSeriesPerMetric"] = "0",
        });
        builder.Services.AddLlmProxyTelemetry(builder.Configuration);
        using var app = builder.Build();

        var ex = Assert.Throws<GatewayConfigurationException>(() => app.MapLlmProxyMetrics());

        Assert.Equal(4, ex.Problems.Count);
        Assert.Contains(ex.Problems, p => p.Contains("ApiKeyHash", StringComparison.Ordinal));
        Assert.Contains(ex.Problems, p => p.Contains("Port", StringComparison.Ordinal));
        Assert.Contains(ex.Problems, p => p.Contains("Path", StringComparison.Ordinal));
        Assert.Contains(ex.Problems, p => p.Contains("MaxSeriesPerMetric", StringComparison.Ordinal));
    }
}
