using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Simulator;
using LlmProxy.Tenancy;

namespace LlmProxy.IntegrationTests.Metering;

/// <summary>
/// Relative <c>PricingFile</c> and <c>DataDirectory</c> resolve against the content root, which is the working directory
/// unless <c>ASPNETCORE_CONTENTROOT</c> (or <c>--contentRoot</c>) names another: a process started in one directory with
/// its content root in another shows which.
/// </summary>
public sealed class ContentRootPathsTests : IAsyncLifetime
{
    private const string TenantKey = "sk-content-root-0123456789";
    private readonly DirectoryInfo _workingDirectory = Directory.CreateTempSubdirectory("llmproxy-cwd-");
    private readonly DirectoryInfo _contentRoot = Directory.CreateTempSubdirectory("llmproxy-root-");
    private SimulatorServer _upstream = null!;

    public async ValueTask InitializeAsync()
    {
        _upstream = await SimulatorServer.StartAsync(new SimulatorOptions());
        var config = Directory.CreateDirectory(Path.Combine(_contentRoot.FullName, "config"));
        File.WriteAllText(Path.Combine(config.FullName, "llmproxy.json"), JsonSerializer.Serialize(new
        {
            LlmProxy = new
            {
                Tenants = new { acme = new { Keys = new { k = ApiKeyHasher.Hash(TenantKey) } } },
                Models = new { chat = new { Deployments = new { sim = new { Provider = "openai", BaseUrl = _upstream.OpenAiEndpoint.ToString() } } } },
                Metering = new { PricingFile = "config/prices.json", DataDirectory = "ledger" },
            },
        }));
        File.WriteAllText(Path.Combine(config.FullName, "prices.json"), """
            { "currency": "USD", "prices": [
              { "provider": "openai", "model": "chat", "input_per_million": 1, "output_per_million": 2, "effective_date": "2024-01-01" } ] }
            """);
    }

    public async ValueTask DisposeAsync()
    {
        await _upstream.DisposeAsync();
        _workingDirectory.Delete(recursive: true);
        _contentRoot.Delete(recursive: true);
    }

    [Fact]
    public async Task RelativePricingFileAndDataDirectory_ResolveAgainstTheContentRoot_NotTheWorkingDirectory()
    {
        await using var gateway = await GatewayProcess.StartAsync(_workingDirectory.FullName,
            new Dictionary<string, string?> { ["ASPNETCORE_CONTENTROOT"] = _contentRoot.FullName }, withoutInheritedAwsOrLlmProxyVariables: true);
        using var http = gateway.CreateClient(TenantKey);
        using var response = await http.PostAsync("/v1/chat/completions",
            new StringContent("""{"model":"chat","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        // SIGTERM flushes the ledger before the process exits.
        gateway.Signal("TERM");
        await gateway.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.Contains(gateway.Lines, l => l.Contains($"loaded from {Path.Combine(_contentRoot.FullName, "config", "prices.json")}", StringComparison.Ordinal));
        Assert.True(File.Exists(Path.Combine(_contentRoot.FullName, "ledger", "usage.db")), "no ledger under the content root:\n" + gateway.Output);
        Assert.Empty(_workingDirectory.EnumerateFileSystemInfos());
    }
}
