using System.Net;
using System.Text;
using System.Text.Json;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Simulator;
using LlmProxy.Tenancy;

namespace LlmProxy.IntegrationTests.Configuration;

/// <summary>Routes and tenants change without a restart; an invalid change is rejected and the old configuration keeps serving.</summary>
public sealed class ConfigurationReloadTests : IAsyncLifetime
{
    private const string AdminKey = "sk-admin-reload-0123456789";
    private readonly string _file = Path.Combine(Path.GetTempPath(), $"llmproxy-reload-{Guid.NewGuid():N}.json");
    private SimulatorServer _simulator = null!;
    private GatewayHost _gateway = null!;

    public async ValueTask InitializeAsync()
    {
        _simulator = await SimulatorServer.StartAsync(new SimulatorOptions());
        WriteConfig(tenants: ["alpha"], models: ["gpt-a"]);
        _gateway = await GatewayHost.StartAsync(new GatewaySettings().AdminKey(AdminKey), configureConfiguration: c => c.AddJsonFile(_file, optional: false, reloadOnChange: true));
    }

    public async ValueTask DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _simulator.DisposeAsync();
        File.Delete(_file);
    }

    private void WriteConfig(string[] tenants, string[] models, string provider = "openai", int? requestsPerMinute = null)
    {
        var config = new
        {
            LlmProxy = new
            {
                Tenants = tenants.ToDictionary(t => t, t => new { Keys = new Dictionary<string, string> { [t + "-key"] = ApiKeyHasher.Hash("sk-" + t) } }),
                Models = models.ToDictionary(m => m, m => new
                {
                    Deployments = new Dictionary<string, object> { [m + "-sim"] = new { Provider = provider, BaseUrl = new Uri(_simulator.BaseAddress, "v1").ToString() } },
                }),
                RateLimits = new
                {
                    Tenants = requestsPerMinute is { } rpm ? tenants.ToDictionary(t => t, _ => new { RequestsPerMinute = rpm }) : [],
                },
            },
        };
        File.WriteAllText(_file, JsonSerializer.Serialize(config));
    }

    private async Task<HttpStatusCode> ChatAsync(string tenant, string model)
    {
        using var http = _gateway.CreateClient("sk-" + tenant);
        using var response = await http.PostAsync("/v1/chat/completions",
            new StringContent($$"""{"model":"{{model}}","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"));
        return response.StatusCode;
    }

    private async Task<JsonElement> ReloadAsync(HttpStatusCode expected)
    {
        using var admin = _gateway.CreateClient(AdminKey);
        using var response = await admin.PostAsync("/admin/config/reload", null);
        Assert.Equal(expected, response.StatusCode);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
    }

    [Fact]
    public async Task ValidChange_AppliesNewTenantsAndRoutes_WithoutRestart()
    {
        Assert.Equal(HttpStatusCode.OK, await ChatAsync("alpha", "gpt-a"));
        Assert.Equal(HttpStatusCode.Unauthorized, await ChatAsync("beta", "gpt-b"));

        WriteConfig(tenants: ["alpha", "beta"], models: ["gpt-a", "gpt-b"]);
        var result = await ReloadAsync(HttpStatusCode.OK);

        Assert.Equal(2, result.GetProperty("models").GetInt32());
        Assert.Equal(HttpStatusCode.OK, await ChatAsync("beta", "gpt-b"));
        Assert.Equal(HttpStatusCode.OK, await ChatAsync("alpha", "gpt-a"));
    }

    [Fact]
    public async Task InvalidChange_IsRejectedAndLogged_OldConfigurationKeepsServing()
    {
        WriteConfig(tenants: ["alpha", "beta"], models: ["gpt-a"], provider: "carrier-pigeon");
        var error = (await ReloadAsync(HttpStatusCode.BadRequest)).GetProperty("error");

        Assert.Equal("invalid_configuration", error.GetProperty("code").GetString());
        Assert.Contains("carrier-pigeon", error.GetProperty("message").GetString());
        Assert.Equal(HttpStatusCode.OK, await ChatAsync("alpha", "gpt-a"));
        Assert.Equal(HttpStatusCode.Unauthorized, await ChatAsync("beta", "gpt-a"));
        Assert.Contains(_gateway.Logs.Lines, l => l.Contains("Configuration change rejected", StringComparison.Ordinal) && l.Contains("carrier-pigeon", StringComparison.Ordinal));
    }

    [Fact]
    public async Task LimitChange_AppliesWithoutRestart()
    {
        Assert.Equal(HttpStatusCode.OK, await ChatAsync("alpha", "gpt-a"));

        WriteConfig(tenants: ["alpha"], models: ["gpt-a"], requestsPerMinute: 1);
        await ReloadAsync(HttpStatusCode.OK);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        var statuses = new List<HttpStatusCode>();
        while (!statuses.Contains(HttpStatusCode.TooManyRequests))
        {
            Assert.True(DateTime.UtcNow < deadline, "the new limit was not applied within 15 s: " + string.Join(",", statuses));
            statuses.Add(await ChatAsync("alpha", "gpt-a"));
        }
        Assert.True(statuses.Count(s => s == HttpStatusCode.OK) <= 1, "at most one request fits a limit of 1 per minute");
    }

    [Fact]
    public async Task FileEdit_IsPickedUpByTheWatcher()
    {
        WriteConfig(tenants: ["alpha", "gamma"], models: ["gpt-a"]);

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (await ChatAsync("gamma", "gpt-a") != HttpStatusCode.OK)
        {
            Assert.True(DateTime.UtcNow < deadline, "the file change was not applied within 15 s");
            await Task.Delay(100);
        }
    }
}
