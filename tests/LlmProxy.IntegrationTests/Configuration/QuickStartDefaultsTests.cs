using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Simulator;
using LlmProxy.Tenancy;
using LlmProxy.Testing;

namespace LlmProxy.IntegrationTests.Configuration;

/// <summary>
/// The gateway as a process started in a directory holding the repository's appsettings.json (the quick start's demo
/// tenant, whose key the README publishes, and its simulator routes), with the operator's own configuration in
/// <c>LLMPROXY_CONFIG</c> or <c>config/llmproxy.json</c>.
/// </summary>
public sealed class QuickStartDefaultsTests : IAsyncLifetime
{
    private const string DemoKey = "sk-llmproxy-demo";
    private const string OperatorKey = "sk-operator-0123456789abcdef";
    private const string SecondKey = "sk-operator-second-0123456789";
    private const string AdminKey = "sk-operator-admin-0123456789";
    private readonly DirectoryInfo _workingDirectory = Directory.CreateTempSubdirectory("llmproxy-quickstart-");
    private readonly DirectoryInfo _elsewhere = Directory.CreateTempSubdirectory("llmproxy-operator-");
    private SimulatorServer _upstream = null!;

    public async ValueTask InitializeAsync()
    {
        _upstream = await SimulatorServer.StartAsync(new SimulatorOptions());
        File.Copy(RepositoryFiles.PathOf("appsettings.json"), Path.Combine(_workingDirectory.FullName, "appsettings.json"));
        Directory.CreateDirectory(Path.Combine(_workingDirectory.FullName, "config"));
    }

    public async ValueTask DisposeAsync()
    {
        await _upstream.DisposeAsync();
        _workingDirectory.Delete(recursive: true);
        _elsewhere.Delete(recursive: true);
    }

    private string OperatorConfiguration(bool secondTenant = false) => JsonSerializer.Serialize(new
    {
        LlmProxy = new
        {
            AdminKeys = new { ops = ApiKeyHasher.Hash(AdminKey) },
            Tenants = new Dictionary<string, object>
            {
                ["payments"] = new { Keys = new { prod = ApiKeyHasher.Hash(OperatorKey) } },
                [secondTenant ? "search" : "payments-too"] = new { Keys = new { prod = ApiKeyHasher.Hash(secondTenant ? SecondKey : OperatorKey + "-unused") } },
            },
            Models = new { house_model = new { Deployments = new { vllm = new { Provider = "openai", BaseUrl = _upstream.OpenAiEndpoint.ToString() } } } },
        },
    });

    /// <summary>Writes the operator's file where <paramref name="layout"/> says and returns the gateway's extra environment.</summary>
    private (string File, Dictionary<string, string?> Environment) Layout(string layout)
    {
        var file = layout == "LLMPROXY_CONFIG"
            ? Path.Combine(_elsewhere.FullName, "operator.json")
            : Path.Combine(_workingDirectory.FullName, "config", "llmproxy.json");
        File.WriteAllText(file, OperatorConfiguration());
        return (file, new Dictionary<string, string?> { ["LLMPROXY_CONFIG"] = layout == "LLMPROXY_CONFIG" ? file : null });
    }

    private static async Task<HttpStatusCode> ChatAsync(HttpClient http, string key, string model)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent($$"""{"model":"{{model}}","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        using var response = await http.SendAsync(request);
        return response.StatusCode;
    }

    private static async Task AssertOnlyOperatorConfigurationServedAsync(HttpClient http)
    {
        Assert.Equal(HttpStatusCode.Unauthorized, await ChatAsync(http, DemoKey, "gpt-4o-mini"));
        Assert.Equal(HttpStatusCode.Unauthorized, await ChatAsync(http, DemoKey, "house_model"));
        Assert.Equal(HttpStatusCode.OK, await ChatAsync(http, OperatorKey, "house_model"));
        Assert.Equal(HttpStatusCode.NotFound, await ChatAsync(http, OperatorKey, "gpt-4o-mini"));
    }

    [Theory]
    [InlineData("LLMPROXY_CONFIG")]
    [InlineData("config/llmproxy.json")]
    public async Task OwnTenants_DemoTenantAndQuickStartRoutesLeftOut_OneWarning_ReloadsDoNotBringThemBack(string layout)
    {
        var (file, environment) = Layout(layout);
        await using var gateway = await GatewayProcess.StartAsync(_workingDirectory.FullName, environment, withoutInheritedAwsOrLlmProxyVariables: true);
        using var http = gateway.CreateClient();

        await AssertOnlyOperatorConfigurationServedAsync(http);
        var warnings = gateway.Lines.Where(l => l.Contains("quick start's defaults in appsettings.json are left out", StringComparison.Ordinal)).ToArray();
        var warning = Assert.Single(warnings);
        Assert.Contains("tenant 'demo'", warning, StringComparison.Ordinal);
        Assert.Contains("LlmProxy:KeepQuickStartDefaults", warning, StringComparison.Ordinal);
        Assert.DoesNotContain(gateway.Lines, l => l.Contains("Simulator listening", StringComparison.OrdinalIgnoreCase));

        // A file edit picked up by the watcher.
        File.WriteAllText(file, OperatorConfiguration(secondTenant: true));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (await ChatAsync(http, SecondKey, "house_model") != HttpStatusCode.OK)
        {
            Assert.True(DateTime.UtcNow < deadline, "the edit was not applied within 20 s:\n" + gateway.Output);
            await Task.Delay(100);
        }
        await AssertOnlyOperatorConfigurationServedAsync(http);

        // An explicit reload.
        using var reload = new HttpRequestMessage(HttpMethod.Post, "/admin/config/reload") { Headers = { Authorization = new("Bearer", AdminKey) } };
        using var reloaded = await http.SendAsync(reload);
        Assert.Equal(HttpStatusCode.OK, reloaded.StatusCode);
        await AssertOnlyOperatorConfigurationServedAsync(http);

        // SIGHUP.
        var before = gateway.Lines.Count;
        gateway.Signal("HUP");
        await gateway.WaitForLineAsync(l => l.Contains("Configuration reload (SIGHUP)", StringComparison.Ordinal) && gateway.Lines.Skip(before).Contains(l),
            TimeSpan.FromSeconds(20));
        await AssertOnlyOperatorConfigurationServedAsync(http);
    }

    [Fact]
    public async Task OwnTenants_KeepQuickStartDefaults_DemoTenantStays()
    {
        var (_, environment) = Layout("config/llmproxy.json");
        environment["LlmProxy__KeepQuickStartDefaults"] = "true";
        // The embedded simulator's fixed port may be taken by another test; the demo key's admission is what counts here.
        environment["LlmProxy__Simulator__Enabled"] = "false";
        await using var gateway = await GatewayProcess.StartAsync(_workingDirectory.FullName, environment, withoutInheritedAwsOrLlmProxyVariables: true);
        using var http = gateway.CreateClient(DemoKey);

        using var models = await http.GetAsync("/v1/models");

        Assert.Equal(HttpStatusCode.OK, models.StatusCode);
        Assert.Contains("gpt-4o-mini", await models.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, await ChatAsync(http, OperatorKey, "house_model"));
        Assert.DoesNotContain(gateway.Lines, l => l.Contains("are left out", StringComparison.Ordinal));
    }

    [Fact]
    public async Task NoTenantOfItsOwn_DemoTenantServed()
    {
        // Only a model of the operator's: the quick start's tenant is the only one, so it stays.
        File.WriteAllText(Path.Combine(_workingDirectory.FullName, "config", "llmproxy.json"), JsonSerializer.Serialize(new
        {
            LlmProxy = new { Models = new { house_model = new { Deployments = new { vllm = new { Provider = "openai", BaseUrl = _upstream.OpenAiEndpoint.ToString() } } } } },
        }));
        var environment = new Dictionary<string, string?> { ["LlmProxy__Simulator__Enabled"] = "false" };
        await using var gateway = await GatewayProcess.StartAsync(_workingDirectory.FullName, environment, withoutInheritedAwsOrLlmProxyVariables: true);
        using var http = gateway.CreateClient();

        Assert.Equal(HttpStatusCode.OK, await ChatAsync(http, DemoKey, "house_model"));
    }
}
