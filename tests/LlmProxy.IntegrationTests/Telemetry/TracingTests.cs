using System.Diagnostics;
using System.Collections.Concurrent;
using System.Net;
using System.Text;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Simulator;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;

namespace LlmProxy.IntegrationTests.Telemetry;

/// <summary>With tracing on, a client's trace continues to the upstream, and spans reach an OTLP collector.</summary>
public sealed class TracingTests
{
    private const string Key = "sk-tenant-tracing-0123456789";

    [Fact]
    public async Task TracingOn_TraceparentReachesUpstream_AndSpansAreExportedOverOtlp()
    {
        await using var collector = await FakeOtlpCollector.StartAsync();
        await using var simulator = await SimulatorServer.StartAsync(new SimulatorOptions());
        var gateway = await GatewayHost.StartAsync(new GatewaySettings()
            .Tenant("traced-tenant", Key)
            .OpenAi("gpt-traced", "traced-deployment", simulator.BaseAddress)
            .Set("LlmProxy:Tracing:Enabled", "true")
            .Set("LlmProxy:Tracing:Protocol", "http/protobuf")
            .Set("LlmProxy:Tracing:Endpoint", collector.TracesUrl));
        using var http = gateway.CreateClient(Key);
        const string traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent("""{"model":"gpt-traced","messages":[{"role":"user","content":"trace me"}]}""", Encoding.UTF8, "application/json"),
        };
        // A traced client: its HttpClient sends traceparent from the current activity. (A header added by hand would be
        // replaced, since in this process HttpClient is instrumented for the gateway's spans.)
        using var clientSpan = new Activity("client").SetParentId($"00-{traceId}-00f067aa0ba902b7-01").Start();

        using var response = await http.SendAsync(request);
        clientSpan.Stop();
        await gateway.DisposeAsync(); // flushes the exporter

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var upstreamTraceparent = simulator.Requests.Last!.Header("traceparent");
        Assert.NotNull(upstreamTraceparent);
        Assert.Equal(traceId, upstreamTraceparent!.Split('-')[1]);

        var exported = collector.Bodies.Aggregate(Array.Empty<byte>(), (all, body) => [.. all, .. body]);
        Assert.NotEmpty(exported);
        var text = Encoding.UTF8.GetString(exported);
        Assert.Contains("chat gpt-traced", text);
        Assert.Contains("traced-tenant", text);
        Assert.Contains("traced-deployment", text);
        Assert.Contains("gen_ai.usage.input_tokens", text);
        Assert.Contains("http.route", text); // ASP.NET Core's server span, through its instrumentation
        Assert.DoesNotContain(Key, text);
    }

    [Fact]
    public async Task TracingOff_NoSpansExported()
    {
        await using var collector = await FakeOtlpCollector.StartAsync();
        await using var simulator = await SimulatorServer.StartAsync(new SimulatorOptions());
        var gateway = await GatewayHost.StartAsync(new GatewaySettings()
            .Tenant("quiet-tenant", Key)
            .OpenAi("gpt-quiet", "quiet-deployment", simulator.BaseAddress)
            .Set("LlmProxy:Tracing:Endpoint", collector.TracesUrl));
        using var http = gateway.CreateClient(Key);

        using var response = await http.PostAsync("/v1/chat/completions",
            new StringContent("""{"model":"gpt-quiet","messages":[{"role":"user","content":"x"}]}""", Encoding.UTF8, "application/json"));
        await gateway.DisposeAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Empty(collector.Bodies);
    }

    /// <summary>Accepts OTLP/HTTP protobuf posts and keeps their bodies.</summary>
    private sealed class FakeOtlpCollector(WebApplication app, string tracesUrl) : IAsyncDisposable
    {
        public string TracesUrl { get; } = tracesUrl;

        public ConcurrentQueue<byte[]> Bodies { get; } = new();

        public static async Task<FakeOtlpCollector> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.Logging.ClearProviders();
            var app = builder.Build();
            FakeOtlpCollector? self = null;
            app.MapPost("/v1/traces", async (HttpContext context) =>
            {
                using var buffer = new MemoryStream();
                await context.Request.Body.CopyToAsync(buffer);
                self!.Bodies.Enqueue(buffer.ToArray());
                context.Response.ContentType = "application/x-protobuf";
            });
            await app.StartAsync();
            var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
            self = new FakeOtlpCollector(app, address + "/v1/traces");
            return self;
        }

        public async ValueTask DisposeAsync()
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }
}
