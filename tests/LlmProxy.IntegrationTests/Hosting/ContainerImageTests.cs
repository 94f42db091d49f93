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
        // Reachable from outside the container, on the port the image exposes.
        var urls = configuration["Urls"];
        Assert.NotNull(urls);
        Assert.Contains(image.ExposedPorts, port => urls == $"http://0.0.0.0:{port}" || urls == $"http://+:{port}" || urls == $"http://*:{port}");
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
