using System.Runtime.InteropServices;
using LlmProxy.Caching;
using LlmProxy.Hosting;
using LlmProxy.Pipeline;
using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.AspNetCore.Http;
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

// Starts, on loopback ports: the simulator (the "direct upstream" baseline), a gateway with the memory store and,
// with --redis host:port, a gateway with the Redis store. Model "cached" is cached, model "plain" is not (the
// gateway's own cost without the cache). Prints NAME=URL lines, then READY, and runs until SIGTERM/SIGINT or
// --max-seconds (default 600) pass, so it never outlives the script that started it by long.
const string Key = "sk-cache-benchmark-0123456789";

var redis = Arg("--redis");
var maxSeconds = int.TryParse(Arg("--max-seconds"), out var m) ? m : 600;
using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(maxSeconds));
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });

await using var simulator = await SimulatorServer.StartAsync(new SimulatorOptions());
var upstream = new Uri(simulator.BaseAddress, "v1").ToString();
var apps = new List<WebApplication>();
try
{
    Console.WriteLine($"SIMULATOR={simulator.BaseAddress.ToString().TrimEnd('/')}");
    var memory = await StartGatewayAsync(upstream, new() { ["LlmProxy:Cache:Store"] = "memory" });
    apps.Add(memory.App);
    Console.WriteLine($"MEMORY={memory.Url}");
    if (!string.IsNullOrEmpty(redis))
    {
        var redisGateway = await StartGatewayAsync(upstream, new()
        {
            ["LlmProxy:Cache:Store"] = "redis",
            ["LlmProxy:Cache:Redis:Configuration"] = redis,
        });
        apps.Add(redisGateway.App);
        Console.WriteLine($"REDIS={redisGateway.Url}");
    }
    Console.WriteLine($"KEY={Key}");
    Console.WriteLine("READY");
    await Task.Delay(Timeout.Infinite, stop.Token).ContinueWith(_ => { }, TaskScheduler.Default);
}
finally
{
    foreach (var app in apps)
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }
}
return 0;

static async Task<(WebApplication App, string Url)> StartGatewayAsync(string upstream, Dictionary<string, string?> cache)
{
    var settings = new Dictionary<string, string?>(cache)
    {
        ["LlmProxy:Tenants:bench:Keys:k"] = ApiKeyHasher.Hash(Key),
        ["LlmProxy:Models:cached:Deployments:sim-cached:Provider"] = "openai",
        ["LlmProxy:Models:cached:Deployments:sim-cached:BaseUrl"] = upstream,
        ["LlmProxy:Models:plain:Deployments:sim-plain:Provider"] = "openai",
        ["LlmProxy:Models:plain:Deployments:sim-plain:BaseUrl"] = upstream,
        ["LlmProxy:Cache:Models:cached:Enabled"] = "true",
    };
    var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory, EnvironmentName = "Benchmark" });
    builder.Configuration.AddInMemoryCollection(settings);
    builder.WebHost.UseUrls("http://127.0.0.1:0");
    // The per-request Information log line would dominate a sub-millisecond hit; production runs ship logs asynchronously.
    builder.Logging.ClearProviders();
    builder.Services.AddLlmProxy(builder.Configuration);
    builder.Services.AddLlmProxyResponseCache();
    var times = new ServerTimes();
    builder.Services.AddSingleton<IChatRequestCompletionListener>(times);
    var app = builder.Build();
    app.UseLlmProxy();
    // In-gateway time of the requests since the last call (from the endpoint's start to the end of the response), then reset.
    app.MapGet("/_bench/times", () => times.TakeSummary());
    await app.StartAsync();
    var url = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
    return (app, url);
}

string? Arg(string name)
{
    var index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
}

/// <summary>Time each chat request spent in the gateway, as the endpoint measures it, split into cache hits and the rest.</summary>
internal sealed class ServerTimes : IChatRequestCompletionListener
{
    private ConcurrentQueue<double> _hits = new();
    private ConcurrentQueue<double> _others = new();

    public void OnCompleted(ChatRequestCompletion completion) =>
        (completion.Chat?.CacheHit == true ? _hits : _others).Enqueue(completion.Elapsed.TotalMilliseconds);

    public string TakeSummary()
    {
        var hits = Interlocked.Exchange(ref _hits, new()).ToArray();
        var others = Interlocked.Exchange(ref _others, new()).ToArray();
        return $"hits={hits.Length} hit_p50={P(hits, 50)} hit_p99={P(hits, 99)} others={others.Length} other_p50={P(others, 50)} other_p99={P(others, 99)}";
    }

    private static string P(double[] values, double p)
    {
        if (values.Length == 0)
        {
            return "-";
        }
        Array.Sort(values);
        var rank = Math.Clamp((int)Math.Ceiling(p / 100 * values.Length) - 1, 0, values.Length - 1);
        return values[rank].ToString("F3", CultureInfo.InvariantCulture);
    }
}
