using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.IntegrationTests.OpenAiApi;
using LlmProxy.Simulator;
using LlmProxy.Tenancy;
using LlmProxy.Testing;

namespace LlmProxy.IntegrationTests.Hosting;

/// <summary>
/// The container image carries production defaults only. Configuration layers can add keys but never remove them, so
/// a demo tenant (whose key the README publishes) or the quick start's simulator routes in the image's appsettings.json
/// would stay enabled under any operator configuration. The tests follow the Dockerfile to the file it ships.
/// </summary>
public sealed partial class ContainerImageTests
{
    /// <summary>The quick start's demo key, published in the README.</summary>
    private const string DemoKey = "sk-llmproxy-demo";

    [Fact]
    public void Dockerfile_ShippedAppSettings_HasNoTenantModelAdminKeyOrSimulator()
    {
        var image = DockerfileImage.Read(RepositoryFiles.Root);
        var shipped = ShippedAppSettings(image);
        var configuration = new ConfigurationBuilder().AddJsonFile(RepositoryFiles.PathOf(shipped)).Build();

        Assert.Empty(configuration.GetSection("LlmProxy:Tenants").GetChildren());
        Assert.Empty(configuration.GetSection("LlmProxy:AdminKeys").GetChildren());
        Assert.Empty(configuration.GetSection("LlmProxy:Models").GetChildren());
        Assert.NotEqual("true", configuration["LlmProxy:Simulator:Enabled"], StringComparer.OrdinalIgnoreCase);
        // No key hash anywhere in the file, under whatever name.
        var text = File.ReadAllText(RepositoryFiles.PathOf(shipped));
        Assert.DoesNotMatch(Sha256Hex(), text);
        Assert.DoesNotContain(ApiKeyHasher.Hash(DemoKey), text, StringComparison.OrdinalIgnoreCase);
        // Reachable from outside the container, on ports the image exposes.
        var urls = configuration["Urls"];
        Assert.NotNull(urls);
        Assert.All(urls.Split(';'), url => Assert.Contains(image.ExposedPorts, port => url == $"http://0.0.0.0:{port}" || url == $"http://+:{port}" || url == $"http://*:{port}"));
    }

    [Fact]
    public void Dockerfile_ShippedAppSettings_ListenOnAPublicPortAndASeparateManagementPort()
    {
        var (publicPort, managementPort) = ShippedPorts(DockerfileImage.Read(RepositoryFiles.Root));

        Assert.NotEqual(publicPort, managementPort);
    }

    [Fact]
    public async Task ShippedDefaults_ManagementEndpoints_OnlyOnManagementPort()
    {
        const string tenantKey = "sk-tenant-0123456789abcdef";
        const string adminKey = "sk-admin-0123456789abcdef";
        await using var upstream = await SimulatorServer.StartAsync(new SimulatorOptions());
        var directory = ImageLayout($$"""
            {
              "LlmProxy": {
                "AdminKeys": { "ops": "{{ApiKeyHasher.Hash(adminKey)}}" },
                "Tenants": { "payments": { "Keys": { "prod": "{{ApiKeyHasher.Hash(tenantKey)}}" } } },
                "Models": { "house-model": { "Deployments": { "vllm": { "Provider": "openai", "BaseUrl": "{{upstream.OpenAiEndpoint}}" } } } }
              }
            }
            """);
        try
        {
            // The image's two listeners, each moved to a free loopback port; everything else as shipped.
            _ = ShippedPorts(DockerfileImage.Read(RepositoryFiles.Root));
            var publicPort = ErrorResponseTests.ClosedPort();
            var managementPort = ErrorResponseTests.ClosedPort();
            Assert.NotEqual(publicPort, managementPort);
            await using var gateway = GatewayProcess.Start(directory.FullName, new Dictionary<string, string?>
            {
                ["ASPNETCORE_ENVIRONMENT"] = "Production",
                ["ASPNETCORE_HTTP_PORTS"] = "",
                ["LLMPROXY_CONFIG"] = null,
                ["LlmProxy__Management__Port"] = managementPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            }, urls: $"http://127.0.0.1:{publicPort};http://127.0.0.1:{managementPort}");
            await gateway.WaitUntilAnswersAsync("/healthz", TimeSpan.FromSeconds(60));
            using var publicHttp = gateway.CreateClient();
            using var management = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{managementPort}/"), Timeout = TimeSpan.FromSeconds(60) };

            // The public port: every management endpoint is an unknown URL, whatever the key, method or Host header.
            (HttpMethod Method, string Path)[] managementEndpoints =
            [
                (HttpMethod.Get, "/metrics"), (HttpMethod.Get, "/readyz"), (HttpMethod.Get, "/admin/deployments"),
                (HttpMethod.Post, "/admin/deployments/vllm/drain"), (HttpMethod.Post, "/admin/config/reload"),
                (HttpMethod.Get, "/admin/config/reload"), (HttpMethod.Get, "/admin/usage"), (HttpMethod.Get, "/admin/usage/estimate"),
            ];
            foreach (var (method, path) in managementEndpoints)
            {
                using var request = new HttpRequestMessage(method, path) { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", adminKey) } };
                using var response = await publicHttp.SendAsync(request);
                Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"{method} {path} on the public port answered {(int)response.StatusCode}");
                Assert.Equal("unknown_url", JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("code").GetString());
            }
            using var spoofed = new HttpRequestMessage(HttpMethod.Get, "/metrics") { Headers = { Host = $"127.0.0.1:{managementPort}" } };
            using var spoofedResponse = await publicHttp.SendAsync(spoofed);
            Assert.Equal(HttpStatusCode.NotFound, spoofedResponse.StatusCode);

            // The public port still serves the client API and a /healthz that says nothing about what is behind it.
            using var health = await publicHttp.GetAsync("/healthz");
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
            Assert.Empty(JsonDocument.Parse(await health.Content.ReadAsStringAsync()).RootElement.GetProperty("checks").EnumerateObject());
            using var modelsRequest = new HttpRequestMessage(HttpMethod.Get, "/v1/models") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", tenantKey) } };
            using var models = await publicHttp.SendAsync(modelsRequest);
            Assert.Equal(HttpStatusCode.OK, models.StatusCode);

            // The management port serves them all, behind the same credentials as before.
            using var metrics = await management.GetAsync("/metrics");
            Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);
            Assert.Contains("dotnet_process_memory_working_set_bytes", await metrics.Content.ReadAsStringAsync());
            using var ready = await management.GetAsync("/readyz");
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
            Assert.True(JsonDocument.Parse(await ready.Content.ReadAsStringAsync()).RootElement.GetProperty("checks").TryGetProperty("configuration", out _));
            using var anonymousAdmin = await management.GetAsync("/admin/deployments");
            Assert.Equal(HttpStatusCode.Unauthorized, anonymousAdmin.StatusCode);
            management.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", adminKey);
            using var deployments = await management.GetAsync("/admin/deployments");
            Assert.Equal(HttpStatusCode.OK, deployments.StatusCode);
            Assert.Contains("vllm", await deployments.Content.ReadAsStringAsync());
            using var reload = await management.PostAsync("/admin/config/reload", content: null);
            Assert.Equal(HttpStatusCode.OK, reload.StatusCode);
            using var usage = await management.GetAsync("/admin/usage");
            Assert.NotEqual(HttpStatusCode.NotFound, usage.StatusCode);
            Assert.NotEqual(HttpStatusCode.Unauthorized, usage.StatusCode);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public void Dockerfile_ShipsNoOperatorConfigurationOrEnvironmentSettings()
    {
        var image = DockerfileImage.Read(RepositoryFiles.Root);

        // Files the gateway would load on its own besides appsettings.json: each could carry tenants or routes.
        Assert.DoesNotContain(image.WorkDir.TrimEnd('/') + "/config/llmproxy.json", image.Files.Keys);
        Assert.DoesNotContain(image.Files.Keys, path => path.StartsWith(image.WorkDir.TrimEnd('/') + "/appsettings.", StringComparison.Ordinal)
            && path != image.WorkDir.TrimEnd('/') + "/appsettings.json");
        Assert.DoesNotContain("appsettings.json", image.Files.Values);
    }

    [Fact]
    public async Task ShippedDefaults_WithoutOperatorConfiguration_GatewayRefusesToStart()
    {
        var directory = ImageLayout(operatorConfiguration: null);
        try
        {
            await using var gateway = StartGateway(directory.FullName, ErrorResponseTests.ClosedPort());
            await gateway.WaitForExitAsync(TimeSpan.FromSeconds(60));

            Assert.Equal(1, gateway.ExitCode);
            Assert.Contains("LlmProxy:Models is empty", gateway.Output);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task ShippedDefaults_WithOperatorConfiguration_DemoKeyRejectedAndOnlyOperatorModelsServed()
    {
        const string operatorKey = "sk-operator-0123456789abcdef";
        await using var upstream = await SimulatorServer.StartAsync(new SimulatorOptions());
        var directory = ImageLayout($$"""
            {
              "LlmProxy": {
                "Tenants": { "payments": { "Keys": { "prod": "{{ApiKeyHasher.Hash(operatorKey)}}" } } },
                "Models": { "house-model": { "Deployments": { "vllm": { "Provider": "openai", "BaseUrl": "{{upstream.OpenAiEndpoint}}" } } } }
              }
            }
            """);
        try
        {
            await using var gateway = StartGateway(directory.FullName, ErrorResponseTests.ClosedPort());
            using var http = gateway.CreateClient();
            await gateway.WaitUntilAnswersAsync("/healthz", TimeSpan.FromSeconds(60));

            using var demo = await PostChatAsync(http, DemoKey, "gpt-4o-mini");
            using var demoOnOperatorModel = await PostChatAsync(http, DemoKey, "house-model");
            using var served = await PostChatAsync(http, operatorKey, "house-model");
            using var quickStartModel = await PostChatAsync(http, operatorKey, "gpt-4o-mini");
            using var modelsRequest = new HttpRequestMessage(HttpMethod.Get, "/v1/models") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", operatorKey) } };
            using var models = await http.SendAsync(modelsRequest);

            Assert.Equal(HttpStatusCode.Unauthorized, demo.StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, demoOnOperatorModel.StatusCode);
            Assert.Equal(HttpStatusCode.OK, served.StatusCode);
            Assert.Equal(HttpStatusCode.NotFound, quickStartModel.StatusCode);
            var ids = JsonDocument.Parse(await models.Content.ReadAsStringAsync()).RootElement.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString());
            Assert.Equal(["house-model"], ids);
            Assert.DoesNotContain("simulator", gateway.Output, StringComparison.OrdinalIgnoreCase);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    /// <summary>The repository file the image ships as its appsettings.json, found by following the Dockerfile.</summary>
    private static string ShippedAppSettings(DockerfileImage image)
    {
        var target = image.WorkDir.TrimEnd('/') + "/appsettings.json";
        Assert.True(image.Files.TryGetValue(target, out var source), $"The Dockerfile does not put an appsettings.json into {image.WorkDir}.");
        return source;
    }

    /// <summary>The two ports of the shipped Urls: the public one and the management one (<c>LlmProxy:Management:Port</c>).</summary>
    private static (int Public, int Management) ShippedPorts(DockerfileImage image)
    {
        var configuration = new ConfigurationBuilder().AddJsonFile(RepositoryFiles.PathOf(ShippedAppSettings(image))).Build();
        var management = configuration.GetValue<int?>("LlmProxy:Management:Port");
        Assert.True(management is not null, "The image's defaults set no LlmProxy:Management:Port.");
        var ports = configuration["Urls"]!.Split(';').Select(url => BindingAddress.Parse(url).Port).ToArray();
        Assert.Equal(2, ports.Length);
        Assert.Contains(management.Value, ports);
        return (ports.Single(p => p != management.Value), management.Value);
    }

    /// <summary>A working directory laid out like the image's: the shipped appsettings.json and, optionally, the operator's config/llmproxy.json.</summary>
    private static DirectoryInfo ImageLayout(string? operatorConfiguration)
    {
        var directory = Directory.CreateTempSubdirectory("llmproxy-image-");
        File.Copy(RepositoryFiles.PathOf(ShippedAppSettings(DockerfileImage.Read(RepositoryFiles.Root))), Path.Combine(directory.FullName, "appsettings.json"));
        if (operatorConfiguration is not null)
        {
            Directory.CreateDirectory(Path.Combine(directory.FullName, "config"));
            File.WriteAllText(Path.Combine(directory.FullName, "config", "llmproxy.json"), operatorConfiguration);
        }
        return directory;
    }

    private static GatewayProcess StartGateway(string workingDirectory, int port) =>
        // As the image runs it, except for the address: loopback and a free port instead of 0.0.0.0:8080.
        GatewayProcess.Start(workingDirectory, new Dictionary<string, string?>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["ASPNETCORE_HTTP_PORTS"] = "",
            ["LLMPROXY_CONFIG"] = null,
        }, port);

    private static Task<HttpResponseMessage> PostChatAsync(HttpClient http, string key, string model)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent($$"""{"model":"{{model}}","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return http.SendAsync(request);
    }

    [GeneratedRegex("[0-9a-fA-F]{64}")]
    private static partial Regex Sha256Hex();
}
