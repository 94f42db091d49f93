using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using LlmProxy.Caching;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Pipeline;
using LlmProxy.Simulator;

namespace LlmProxy.IntegrationTests.Caching;

/// <summary>A simulator and a gateway with the response cache, for one test.</summary>
internal sealed class CacheTestGateway : IAsyncDisposable
{
    public const string Model = "gpt-test";

    private CacheTestGateway(SimulatorServer simulator, GatewayHost gateway, CompletionRecorder completions)
    {
        Simulator = simulator;
        Gateway = gateway;
        Completions = completions;
    }

    public SimulatorServer Simulator { get; }
    public GatewayHost Gateway { get; }
    public CompletionRecorder Completions { get; }

    /// <summary>Upstream chat requests so far.</summary>
    public int UpstreamCalls => Simulator.Requests.Count;

    public static Task<CacheTestGateway> StartAsync(Action<GatewaySettings>? configure = null, Action<IServiceCollection>? services = null,
        SimulatorOptions? simulatorOptions = null, params string[] tenants) =>
        StartAsync(null, configure, services, simulatorOptions, tenants);

    /// <summary>Starts a gateway on an existing simulator (several gateways sharing one store and one upstream).</summary>
    public static async Task<CacheTestGateway> StartAsync(SimulatorServer? simulator, Action<GatewaySettings>? configure,
        Action<IServiceCollection>? services, SimulatorOptions? simulatorOptions, params string[] tenants)
    {
        simulator ??= await SimulatorServer.StartAsync(simulatorOptions ?? new SimulatorOptions());
        var settings = new GatewaySettings()
            .OpenAi(Model, "sim", simulator.BaseAddress)
            .Set("LlmProxy:Cache:Enabled", "true");
        foreach (var tenant in tenants.Length == 0 ? ["acme", "globex"] : tenants)
        {
            settings.Tenant(tenant, KeyOf(tenant));
        }
        configure?.Invoke(settings);
        var completions = new CompletionRecorder();
        var gateway = await GatewayHost.StartAsync(settings, s =>
        {
            s.AddSingleton<IChatRequestCompletionListener>(completions);
            services?.Invoke(s);
            s.AddLlmProxyResponseCache();
        });
        return new CacheTestGateway(simulator, gateway, completions);
    }

    public static string KeyOf(string tenant) => "sk-" + tenant + "-0123456789abcdef";

    public HttpClient Client(string tenant = "acme") => Gateway.CreateClient(KeyOf(tenant));

    public static JsonObject Body(string content = "Hello there", bool stream = false, bool includeUsage = false)
    {
        var body = new JsonObject
        {
            ["model"] = Model,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = content }),
        };
        if (stream)
        {
            body["stream"] = true;
        }
        if (includeUsage)
        {
            body["stream_options"] = new JsonObject { ["include_usage"] = true };
        }
        return body;
    }

    public async Task<Reply> SendAsync(string tenant, string json, params (string Name, string Value)[] headers)
    {
        using var client = Client(tenant);
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions")
        {
            Content = new StringContent(json, Encoding.UTF8, "application/json"),
        };
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
        using var response = await client.SendAsync(request, TestContext.Current.CancellationToken);
        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        return new Reply((int)response.StatusCode,
            response.Headers.TryGetValues(ResponseCacheHeaders.Result, out var result) ? result.Single() : null,
            response.Headers.Age,
            text);
    }

    public Task<Reply> SendAsync(string tenant, JsonObject body, params (string Name, string Value)[] headers) =>
        SendAsync(tenant, body.ToJsonString(), headers);

    public async ValueTask DisposeAsync()
    {
        await Gateway.DisposeAsync();
        await Simulator.DisposeAsync();
    }
}

internal sealed record Reply(int Status, string? Cache, TimeSpan? Age, string Body)
{
    public JsonNode Json => JsonNode.Parse(Body)!;

    public string Id => Body.StartsWith("data: ", StringComparison.Ordinal)
        ? JsonNode.Parse(Events[0])!["id"]!.GetValue<string>()
        : Json["id"]!.GetValue<string>();

    public string Content => Body.StartsWith("data: ", StringComparison.Ordinal)
        ? Sse.Content(Events)
        : Json["choices"]![0]!["message"]!["content"]!.GetValue<string>();

    public IReadOnlyList<string> Events => Body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries)
        .Select(e => e.StartsWith("data: ", StringComparison.Ordinal) ? e["data: ".Length..] : e).ToArray();
}

/// <summary>What the endpoint reports for every chat request once it is over (what metering sees).</summary>
internal sealed class CompletionRecorder : IChatRequestCompletionListener
{
    public ConcurrentQueue<ChatRequestCompletion> All { get; } = new();

    public void OnCompleted(ChatRequestCompletion completion) => All.Enqueue(completion);
}
