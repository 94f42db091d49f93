using LlmProxy.IntegrationTests.Infrastructure;

namespace LlmProxy.IntegrationTests.Hosting;

/// <summary>The gateway as a process: an invalid configuration stops startup with every problem listed.</summary>
public sealed class StartupTests
{
    [Fact]
    public async Task InvalidConfiguration_ProcessExitsWithEveryProblemListed()
    {
        var directory = Directory.CreateTempSubdirectory("llmproxy-startup-");
        try
        {
            var config = Path.Combine(directory.FullName, "bad.json");
            await File.WriteAllTextAsync(config, """
            {
              "LlmProxy": {
                "Tenants": { "acme": { "Keys": { "k": "not-a-hash" } } },
                "Models": {
                  "gpt": { "Deployments": { "d1": { "Provider": "carrier-pigeon" } } },
                  "empty": { "Deployments": { } },
                  "bad-url": { "Deployments": { "d2": { "Provider": "openai", "BaseUrl": "ftp://x" } } }
                }
              }
            }
            """);
            await using var gateway = GatewayProcess.Start(directory.FullName, new Dictionary<string, string?> { ["LLMPROXY_CONFIG"] = config });
            await gateway.WaitForExitAsync(TimeSpan.FromSeconds(60));
            var message = gateway.Output;

            Assert.Equal(1, gateway.ExitCode);
            Assert.Contains("LlmProxy configuration is invalid", message);
            Assert.Contains("Tenants:acme:Keys:k", message);
            Assert.Contains("'carrier-pigeon' is unknown", message);
            Assert.Contains("Models:empty has no deployments", message);
            Assert.Contains("BaseUrl 'ftp://x'", message);
            Assert.DoesNotContain("   at ", message); // no stack trace
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }
}
