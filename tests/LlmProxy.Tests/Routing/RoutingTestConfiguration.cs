using LlmProxy.Configuration;
using LlmProxy.Providers;
using LlmProxy.Providers.OpenAi;
using LlmProxy.Routing;
using LlmProxy.Tenancy;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace LlmProxy.Tests.Routing;

/// <summary>A validated gateway configuration with one model, "m", served by the given OpenAI deployments, and its health registry.</summary>
internal sealed class RoutingTestConfiguration
{
    public RoutingTestConfiguration(TimeProvider time, params (string Id, DeploymentOptions Options)[] deployments)
    {
        Options = new LlmProxyOptions
        {
            Tenants = { ["t"] = new TenantOptions { Keys = { ["k"] = ApiKeyHasher.Hash("x") } } },
            Models = { ["m"] = new ModelRouteOptions() },
        };
        foreach (var (id, options) in deployments)
        {
            Options.Models["m"].Deployments[id] = options;
        }
        var builder = new GatewayConfigurationBuilder(new ProviderRegistry([new OpenAiProvider()]));
        Provider = new GatewayConfigurationProvider(new StaticOptionsMonitor(Options), builder, NullLogger<GatewayConfigurationProvider>.Instance);
        Registry = new DeploymentHealthRegistry(Provider, time, NullLogger<DeploymentHealthRegistry>.Instance);
    }

    public LlmProxyOptions Options { get; }

    public GatewayConfigurationProvider Provider { get; }

    public DeploymentHealthRegistry Registry { get; }

    public ModelRoute Route => Provider.Current.Routes["m"];

    public DeploymentHealth Health(string id) => Registry.Get(Provider.Current.Deployments[id]);

    /// <summary>An OpenAI deployment on a port nothing listens on; these tests never send to it.</summary>
    public static DeploymentOptions OpenAi(int priority = 0, int weight = 1) =>
        new() { Provider = "openai", BaseUrl = "http://127.0.0.1:9/v1", Priority = priority, Weight = weight };

    private sealed class StaticOptionsMonitor(LlmProxyOptions value) : IOptionsMonitor<LlmProxyOptions>
    {
        public LlmProxyOptions CurrentValue => value;
        public LlmProxyOptions Get(string? name) => value;
        public IDisposable? OnChange(Action<LlmProxyOptions, string?> listener) => null;
    }
}
