using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Simulator;
using LlmProxy.Tenancy;

namespace LlmProxy.IntegrationTests.Configuration;

/// <summary>
/// A configuration file that does not parse never takes effect, not even later: the gateway as a process with two
/// watched files, <c>config/llmproxy.json</c> and the one <c>LLMPROXY_CONFIG</c> names. The framework's JSON provider
/// emptied a file that failed to parse, and the next change to the other file applied the emptied values.
/// </summary>
public sealed class UnparsableFileTests : IAsyncLifetime
{
    private const string AdminKey = "sk-admin-unparsable-0123456789";
    private readonly DirectoryInfo _workingDirectory = Directory.CreateTempSubdirectory("llmproxy-unparsable-");
    private SimulatorServer _upstream = null!;

    private string LocalFile => Path.Combine(_workingDirectory.FullName, "config", "llmproxy.json");

    private string RoutesFile => Path.Combine(_workingDirectory.FullName, "routes.json");

    public async ValueTask InitializeAsync()
    {
        _upstream = await SimulatorServer.StartAsync(new SimulatorOptions());
        Directory.CreateDirectory(Path.Combine(_workingDirectory.FullName, "config"));
        WriteTenants("alpha");
        WriteRoutes("beta", "model-b");
    }

    public async ValueTask DisposeAsync()
    {
        await _upstream.DisposeAsync();
        _workingDirectory.Delete(recursive: true);
    }

    /// <summary>config/llmproxy.json: the admin key and tenants.</summary>
    private void WriteTenants(params string[] tenants) => File.WriteAllText(LocalFile, JsonSerializer.Serialize(new
    {
        LlmProxy = new
        {
            AdminKeys = new { ops = ApiKeyHasher.Hash(AdminKey) },
            Tenants = tenants.ToDictionary(t => t, t => new { Keys = new Dictionary<string, string> { ["k"] = ApiKeyHasher.Hash("sk-" + t) } }),
        },
    }));

    /// <summary>The LLMPROXY_CONFIG file: a tenant of its own and the routes.</summary>
    private void WriteRoutes(string tenant, string model) => File.WriteAllText(RoutesFile, JsonSerializer.Serialize(new
    {
        LlmProxy = new
        {
            Tenants = new Dictionary<string, object> { [tenant] = new { Keys = new Dictionary<string, string> { ["k"] = ApiKeyHasher.Hash("sk-" + tenant) } } },
            Models = new Dictionary<string, object> { [model] = new { Deployments = new Dictionary<string, object> { [model + "-sim"] = new { Provider = "openai", BaseUrl = _upstream.OpenAiEndpoint.ToString() } } } },
        },
    }));

    private static async Task<HttpStatusCode> ChatAsync(HttpClient http, string tenant, string model)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent($$"""{"model":"{{model}}","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "sk-" + tenant);
        using var response = await http.SendAsync(request);
        return response.StatusCode;
    }

    private static async Task UntilAsync(Func<Task<bool>> condition, string because, GatewayProcess gateway)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, because + "\n" + gateway.Output);
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task FileThatDoesNotParse_ThenAnotherFileChanges_LastGoodValuesKeepServing_FixedFileApplies()
    {
        await using var gateway = await GatewayProcess.StartAsync(_workingDirectory.FullName,
            new Dictionary<string, string?> { ["LLMPROXY_CONFIG"] = RoutesFile }, withoutInheritedAwsOrLlmProxyVariables: true);
        using var http = gateway.CreateClient();
        Assert.Equal(HttpStatusCode.OK, await ChatAsync(http, "beta", "model-b"));

        File.WriteAllText(RoutesFile, """{ "LlmProxy": { "Models": """);
        await gateway.WaitForLineAsync(l => l.Contains("Configuration file rejected", StringComparison.Ordinal), TimeSpan.FromSeconds(20));

        // Another watched file changes: its change applies, and the broken file's last good tenant and route still serve.
        WriteTenants("alpha", "gamma");
        await UntilAsync(async () => await ChatAsync(http, "gamma", "model-b") != HttpStatusCode.Unauthorized, "the other file's change was not applied", gateway);
        Assert.Equal(HttpStatusCode.OK, await ChatAsync(http, "gamma", "model-b"));
        Assert.Equal(HttpStatusCode.OK, await ChatAsync(http, "beta", "model-b"));
        Assert.Equal(HttpStatusCode.OK, await ChatAsync(http, "alpha", "model-b"));

        // An explicit reload reports the broken file and changes nothing either; so does SIGHUP.
        using var reload = new HttpRequestMessage(HttpMethod.Post, "/admin/config/reload") { Headers = { Authorization = new("Bearer", AdminKey) } };
        using var reloaded = await http.SendAsync(reload);
        Assert.Equal(HttpStatusCode.BadRequest, reloaded.StatusCode);
        Assert.Contains("Nothing from the configuration files was applied", await reloaded.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        gateway.Signal("HUP");
        await gateway.WaitForLineAsync(l => l.Contains("Configuration reload (SIGHUP)", StringComparison.Ordinal) && l.Contains("problem", StringComparison.Ordinal),
            TimeSpan.FromSeconds(20));
        Assert.Equal(HttpStatusCode.OK, await ChatAsync(http, "beta", "model-b"));
        Assert.Equal(HttpStatusCode.OK, await ChatAsync(http, "gamma", "model-b"));

        // Fixed, the file applies.
        WriteRoutes("delta", "model-d");
        await UntilAsync(async () => await ChatAsync(http, "delta", "model-d") == HttpStatusCode.OK, "the fixed file was not applied", gateway);
        Assert.Equal(HttpStatusCode.Unauthorized, await ChatAsync(http, "beta", "model-d"));
    }
}
