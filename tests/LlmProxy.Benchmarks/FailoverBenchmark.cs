using System.Net;
using System.Net.Sockets;
using System.Text;
using LlmProxy.Hosting;
using LlmProxy.Simulator;
using LlmProxy.Tenancy;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LlmProxy.Benchmarks;

/// <summary>
/// Failover cost: latency added when the primary refuses connections (every request pays a refused connect,
/// then fails over), and when the primary's breaker is already open (the request goes straight to the
/// fallback), both against a healthy single deployment. Scenarios run interleaved (A B C A B C ...) so machine
/// noise does not bias one of them.
/// </summary>
internal static class FailoverBenchmark
{
    private const string Key = "sk-benchmark-failover";

    public static async Task<int> RunAsync(string[] args)
    {
        var requests = ReadInt(args, "--requests", 500);
        var rounds = ReadInt(args, "--rounds", 6);
        await using var upstream = await SimulatorServer.StartAsync(new SimulatorOptions());
        var closedPort = ClosedPort();
        var upstreamUrl = new Uri(upstream.BaseAddress, "v1").ToString();

        await using var healthy = await Gateway.StartAsync(new()
        {
            ["LlmProxy:Models:m:Deployments:only:Provider"] = "openai",
            ["LlmProxy:Models:m:Deployments:only:BaseUrl"] = upstreamUrl,
        });
        await using var refusing = await Gateway.StartAsync(new()
        {
            ["LlmProxy:Models:m:Deployments:primary:Provider"] = "openai",
            ["LlmProxy:Models:m:Deployments:primary:BaseUrl"] = $"http://127.0.0.1:{closedPort}/v1",
            // Never open, so every request pays for the refused connection.
            ["LlmProxy:Models:m:Deployments:primary:Breaker:ConsecutiveFailures"] = "1000000000",
            ["LlmProxy:Models:m:Deployments:primary:Breaker:MinimumThroughput"] = "1000000000",
            ["LlmProxy:Models:m:Deployments:fallback:Provider"] = "openai",
            ["LlmProxy:Models:m:Deployments:fallback:BaseUrl"] = upstreamUrl,
            ["LlmProxy:Models:m:Deployments:fallback:Priority"] = "1",
        });
        await using var open = await Gateway.StartAsync(new()
        {
            ["LlmProxy:Models:m:Deployments:primary:Provider"] = "openai",
            ["LlmProxy:Models:m:Deployments:primary:BaseUrl"] = $"http://127.0.0.1:{closedPort}/v1",
            ["LlmProxy:Models:m:Deployments:primary:Breaker:ConsecutiveFailures"] = "1",
            ["LlmProxy:Models:m:Deployments:primary:Breaker:BreakDuration"] = "01:00:00",
            ["LlmProxy:Models:m:Deployments:fallback:Provider"] = "openai",
            ["LlmProxy:Models:m:Deployments:fallback:BaseUrl"] = upstreamUrl,
            ["LlmProxy:Models:m:Deployments:fallback:Priority"] = "1",
        });

        var scenarios = new (Measurements Results, HttpClient Client)[]
        {
            (new Measurements("healthy single deployment"), healthy.Client),
            (new Measurements("primary refuses connections"), refusing.Client),
            (new Measurements("primary breaker already open"), open.Client),
        };
        foreach (var (_, client) in scenarios)
        {
            for (var i = 0; i < 200; i++)
            {
                await SendAsync(client); // warm-up; also opens the "open" gateway's primary breaker
            }
        }

        for (var round = 0; round < rounds; round++)
        {
            foreach (var (results, client) in scenarios)
            {
                for (var i = 0; i < requests / rounds; i++)
                {
                    results.Add(await Measurements.TimeAsync(() => SendAsync(client)));
                }
            }
        }

        var baseline = scenarios[0].Results;
        Console.WriteLine($"Failover cost, {baseline.Count} sequential non-streamed requests per scenario, {rounds} interleaved rounds, loopback simulator");
        Console.WriteLine($"{"scenario",-32} {"p50 ms",9} {"p99 ms",9} {"mean ms",9} {"added p50",10} {"added p99",10}");
        foreach (var (results, _) in scenarios)
        {
            Console.WriteLine($"{results.Name,-32} {Measurements.Ms(results.Percentile(50)),9} {Measurements.Ms(results.Percentile(99)),9} {Measurements.Ms(results.Mean),9} " +
                $"{Measurements.Ms(results.Percentile(50) - baseline.Percentile(50)),10} {Measurements.Ms(results.Percentile(99) - baseline.Percentile(99)),10}");
        }
        return 0;
    }

    private static async Task SendAsync(HttpClient client)
    {
        using var response = await client.PostAsync("/v1/chat/completions",
            new StringContent("""{"model":"m","messages":[{"role":"user","content":"benchmark"}]}""", Encoding.UTF8, "application/json"));
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw new InvalidOperationException($"unexpected status {(int)response.StatusCode}");
        }
        await response.Content.ReadAsByteArrayAsync();
    }

    private static int ReadInt(string[] args, string name, int fallback)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length && int.TryParse(args[index + 1], out var value) ? value : fallback;
    }

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private sealed class Gateway(WebApplication app, HttpClient client) : IAsyncDisposable
    {
        public HttpClient Client { get; } = client;

        public static async Task<Gateway> StartAsync(Dictionary<string, string?> settings)
        {
            settings["LlmProxy:Tenants:bench:Keys:k"] = ApiKeyHasher.Hash(Key);
            var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory, EnvironmentName = "Benchmark" });
            builder.Configuration.AddInMemoryCollection(settings);
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.Logging.ClearProviders();
            builder.Services.AddLlmProxy(builder.Configuration);
            var app = builder.Build();
            app.UseLlmProxy();
            await app.StartAsync();
            var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
            var client = new HttpClient { BaseAddress = new Uri(address) };
            client.DefaultRequestHeaders.Authorization = new("Bearer", Key);
            return new Gateway(app, client);
        }

        public async ValueTask DisposeAsync()
        {
            Client.Dispose();
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }
}
