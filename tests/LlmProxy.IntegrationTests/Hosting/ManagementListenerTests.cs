using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using LlmProxy.Configuration;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.IntegrationTests.OpenAiApi;
using LlmProxy.Testing;

namespace LlmProxy.IntegrationTests.Hosting;

/// <summary>
/// <c>LlmProxy:Management:Port</c>: the metrics, detailed readiness and admin endpoints answer on that port only; without
/// it (the quick start) every endpoint answers on the one port.
/// </summary>
public sealed class ManagementListenerTests
{
    private const string AdminKey = "sk-admin-management-0123456789";
    private const string TenantKey = "sk-tenant-management-0123456789";

    [Fact]
    public void QuickStartAppSettings_OneListenerAndNoManagementPort()
    {
        var configuration = new ConfigurationBuilder().AddJsonFile(RepositoryFiles.PathOf("appsettings.json")).Build();

        Assert.Single(configuration["Urls"]!.Split(';'));
        Assert.Null(configuration["LlmProxy:Management:Port"]);
    }

    [Fact]
    public async Task ManagementPortUnset_ManagementEndpoints_ServedOnTheOnePort()
    {
        await using var gateway = await GatewayHost.StartAsync(Settings());
        using var http = gateway.CreateClient(AdminKey);

        using var metrics = await http.GetAsync("/metrics");
        using var ready = await http.GetAsync("/readyz");
        using var deployments = await http.GetAsync("/admin/deployments");

        Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal(HttpStatusCode.OK, deployments.StatusCode);
    }

    [Fact]
    public async Task ManagementPortSet_KestrelEndpoints_ManagementOnlyOnItsPortClientApiOnBoth()
    {
        var (publicPort, managementPort) = (ErrorResponseTests.ClosedPort(), ErrorResponseTests.ClosedPort());
        await using var gateway = await StartWithListenersAsync(publicPort, managementPort, managementPort);
        using var publicHttp = Client(publicPort, AdminKey);
        using var management = Client(managementPort, AdminKey);

        using var publicMetrics = await publicHttp.GetAsync("/metrics");
        using var publicReady = await publicHttp.GetAsync("/readyz");
        using var publicAdmin = await publicHttp.GetAsync("/admin/deployments");
        // A path that exists on the management port with another method: 404 too, not a 405 that would reveal it.
        using var publicWrongMethod = await publicHttp.DeleteAsync("/admin/config/reload");
        using var publicHealth = await publicHttp.GetAsync("/healthz");
        using var managementMetrics = await management.GetAsync("/metrics");
        using var managementReady = await management.GetAsync("/readyz");
        using var managementAdmin = await management.GetAsync("/admin/deployments");
        using var managementWrongMethod = await management.DeleteAsync("/admin/config/reload");

        foreach (var response in new[] { publicMetrics, publicReady, publicAdmin, publicWrongMethod })
        {
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.Equal("unknown_url", await ErrorCodeAsync(response));
        }
        Assert.Equal(HttpStatusCode.OK, publicHealth.StatusCode);
        Assert.Equal(HttpStatusCode.OK, managementMetrics.StatusCode);
        Assert.Equal(HttpStatusCode.OK, managementReady.StatusCode);
        Assert.Equal(HttpStatusCode.OK, managementAdmin.StatusCode);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, managementWrongMethod.StatusCode);
        Assert.Contains(gateway.Logs.Lines, line => line.Contains($"answer only on port {managementPort}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ManagementPortSet_TenantKeyOnManagementPort_StillNoAdminAccess()
    {
        var (publicPort, managementPort) = (ErrorResponseTests.ClosedPort(), ErrorResponseTests.ClosedPort());
        await using var gateway = await StartWithListenersAsync(publicPort, managementPort, managementPort);
        using var management = Client(managementPort, TenantKey);

        using var deployments = await management.GetAsync("/admin/deployments");

        Assert.Equal(HttpStatusCode.Unauthorized, deployments.StatusCode);
        Assert.Equal("invalid_admin_key", await ErrorCodeAsync(deployments));
    }

    [Fact]
    public async Task ManagementPortSet_NotListenedOn_WarnsAndServesManagementNowhere()
    {
        var (publicPort, managementPort) = (ErrorResponseTests.ClosedPort(), ErrorResponseTests.ClosedPort());
        await using var gateway = await StartWithListenersAsync(publicPort, managementPort: null, managementPort);
        using var publicHttp = Client(publicPort, AdminKey);

        using var metrics = await publicHttp.GetAsync("/metrics");

        Assert.Equal(HttpStatusCode.NotFound, metrics.StatusCode);
        Assert.Contains(gateway.Logs.Lines, line => line.Contains($"LlmProxy:Management:Port is {managementPort} but the gateway does not listen on it", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("0", null, "LlmProxy:Management:Port must be between 1 and 65535.")]
    [InlineData("9090", "9464", "LlmProxy:Metrics:Port (9464) differs from LlmProxy:Management:Port (9090)")]
    public async Task ManagementPort_Invalid_StartupFailsNamingTheProblem(string port, string? metricsPort, string problem)
    {
        var settings = Settings().Set("LlmProxy:Management:Port", port).Set("LlmProxy:Metrics:Port", metricsPort);

        var error = await Assert.ThrowsAsync<GatewayConfigurationException>(() => GatewayHost.StartAsync(settings));

        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MetricsPortEqualToManagementPort_MetricsServedThere()
    {
        var (publicPort, managementPort) = (ErrorResponseTests.ClosedPort(), ErrorResponseTests.ClosedPort());
        await using var gateway = await StartWithListenersAsync(publicPort, managementPort, managementPort,
            s => s.Set("LlmProxy:Metrics:Port", managementPort.ToString(CultureInfo.InvariantCulture)));
        using var publicHttp = Client(publicPort, apiKey: null);
        using var management = Client(managementPort, apiKey: null);

        using var publicMetrics = await publicHttp.GetAsync("/metrics");
        using var managementMetrics = await management.GetAsync("/metrics");

        Assert.Equal(HttpStatusCode.NotFound, publicMetrics.StatusCode);
        Assert.Equal(HttpStatusCode.OK, managementMetrics.StatusCode);
    }

    /// <summary>A gateway with Kestrel endpoints for the public port and, if given, the management port.</summary>
    private static Task<GatewayHost> StartWithListenersAsync(int publicPort, int? managementPort, int configuredManagementPort,
        Action<GatewaySettings>? configure = null)
    {
        var settings = Settings()
            .Set("LlmProxy:Management:Port", configuredManagementPort.ToString(CultureInfo.InvariantCulture));
        configure?.Invoke(settings);
        return GatewayHost.StartAsync(settings, configureConfiguration: configuration =>
        {
            var endpoints = new Dictionary<string, string?> { ["Kestrel:Endpoints:Public:Url"] = $"http://127.0.0.1:{publicPort}" };
            if (managementPort is { } port)
            {
                endpoints["Kestrel:Endpoints:Management:Url"] = $"http://127.0.0.1:{port}";
            }
            configuration.AddInMemoryCollection(endpoints);
        });
    }

    /// <summary>Keys and one route (to a port nothing listens on: no test here sends a completion).</summary>
    private static GatewaySettings Settings() => new GatewaySettings().AdminKey(AdminKey).Tenant("acme", TenantKey)
        .Deployment("gpt-test", "nowhere", "openai", $"http://127.0.0.1:{ErrorResponseTests.ClosedPort()}/v1");

    private static HttpClient Client(int port, string? apiKey)
    {
        var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(30) };
        if (apiKey is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        }
        return client;
    }

    private static async Task<string?> ErrorCodeAsync(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("code").GetString();
}
