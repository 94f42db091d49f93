using System.Net;
using System.Text.Json;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Simulator;

namespace LlmProxy.IntegrationTests.Hosting;

/// <summary>
/// <c>/readyz</c> takes a gateway that cannot serve any model out of the load balancer (503) and puts it back (200) once it
/// can; <c>/healthz</c> keeps answering 200 meanwhile, so the orchestrator does not restart a process that only lacks a key.
/// </summary>
public sealed class ReadinessTests : IAsyncLifetime
{
    private const string AdminKey = "sk-admin-readiness-0123456789";
    private readonly string _keyVariable = "LLMPROXY_TEST_READY_KEY_" + Guid.NewGuid().ToString("N");
    private SimulatorServer _simulator = null!;

    public async ValueTask InitializeAsync() => _simulator = await SimulatorServer.StartAsync(new SimulatorOptions());

    public async ValueTask DisposeAsync()
    {
        await _simulator.DisposeAsync();
        Environment.SetEnvironmentVariable(_keyVariable, null);
    }

    [Fact]
    public async Task Readyz_OnlyDeploymentLacksItsKey_Returns503_ThenKeySetAndReloaded_Returns200()
    {
        await using var gateway = await GatewayHost.StartAsync(new GatewaySettings()
            .Tenant("acme", "sk-tenant-ready-0123456789")
            .AdminKey(AdminKey)
            .OpenAi("gpt-test", "needs-key", _simulator.BaseAddress, apiKeyEnv: _keyVariable));
        using var http = gateway.CreateClient();

        var (notReady, notReadyBody) = await GetAsync(http, "/readyz");
        var (live, _) = await GetAsync(http, "/healthz");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, notReady);
        Assert.Equal("unhealthy", notReadyBody.GetProperty("status").GetString());
        Assert.Equal("unhealthy", notReadyBody.GetProperty("checks").GetProperty("configuration").GetProperty("status").GetString());
        Assert.Equal(HttpStatusCode.OK, live);

        Environment.SetEnvironmentVariable(_keyVariable, "sk-upstream-now-set");
        using var admin = gateway.CreateClient(AdminKey);
        (await admin.PostAsync("/admin/config/reload", null)).EnsureSuccessStatusCode();
        var (ready, readyBody) = await GetAsync(http, "/readyz");

        Assert.Equal(HttpStatusCode.OK, ready);
        Assert.Equal("healthy", readyBody.GetProperty("checks").GetProperty("configuration").GetProperty("status").GetString());
    }

    [Fact]
    public async Task Readyz_SomeModelsServable_Returns200Degraded()
    {
        // A gateway that can still serve some models stays in the load balancer.
        await using var gateway = await GatewayHost.StartAsync(new GatewaySettings()
            .Tenant("acme", "sk-tenant-ready-0123456789")
            .OpenAi("gpt-test", "needs-key", _simulator.BaseAddress, apiKeyEnv: _keyVariable)
            .OpenAi("gpt-open", "no-key-needed", _simulator.BaseAddress));
        using var http = gateway.CreateClient();

        var (status, body) = await GetAsync(http, "/readyz");

        Assert.Equal(HttpStatusCode.OK, status);
        var configuration = body.GetProperty("checks").GetProperty("configuration");
        Assert.Equal("degraded", configuration.GetProperty("status").GetString());
        Assert.Contains("gpt-test", configuration.GetProperty("description").GetString());
    }

    private static async Task<(HttpStatusCode Status, JsonElement Body)> GetAsync(HttpClient http, string path)
    {
        using var response = await http.GetAsync(path);
        return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone());
    }
}
