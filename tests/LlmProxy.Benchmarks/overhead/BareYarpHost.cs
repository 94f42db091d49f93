using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Configuration;

namespace LlmProxy.Benchmarks.Overhead;

/// <summary>
/// The "limit of our architecture" target of the overhead benchmark: YARP (the same 2.3.0 package the gateway
/// forwards with) passing every request through to one upstream, with no feature of its own. It runs as a process
/// of its own, with the gateway's GC settings (server GC) and log level, so that its throughput and peak RSS
/// compare like with like.
/// </summary>
internal static class BareYarpHost
{
    public static async Task<int> RunAsync(string[] args)
    {
        var urls = Options.Read(args, "--urls") ?? throw new ArgumentException("--urls is required");
        var upstream = Options.Read(args, "--upstream") ?? throw new ArgumentException("--upstream is required");
        // Optional second upstream under /stream/ (the prefix is removed), for the streaming runs.
        var streamUpstream = Options.Read(args, "--stream-upstream");

        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.WebHost.UseUrls(urls);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var routes = new List<RouteConfig> { new() { RouteId = "all", ClusterId = "upstream", Match = new RouteMatch { Path = "{**catch-all}" } } };
        var clusters = new List<ClusterConfig> { Cluster("upstream", upstream) };
        if (streamUpstream is not null)
        {
            routes.Add(new RouteConfig
            {
                RouteId = "stream",
                ClusterId = "stream",
                Order = -1,
                Match = new RouteMatch { Path = "/stream/{**rest}" },
                Transforms = [new Dictionary<string, string> { ["PathRemovePrefix"] = "/stream" }],
            });
            clusters.Add(Cluster("stream", streamUpstream));
        }
        builder.Services.AddReverseProxy().LoadFromMemory(routes, clusters);
        var app = builder.Build();
        app.MapReverseProxy();
        await app.RunAsync();
        return 0;
    }

    private static ClusterConfig Cluster(string id, string address) => new()
    {
        ClusterId = id,
        Destinations = new Dictionary<string, DestinationConfig> { ["simulator"] = new() { Address = address } },
    };
}
