using LlmProxy.Configuration;
using Microsoft.Extensions.Configuration.Memory;
using Microsoft.Extensions.Options;

namespace LlmProxy.Tests.Configuration;

public sealed class QuickStartDefaultsTests : IDisposable
{
    // The shape of the repository's appsettings.json: a demo tenant, two models with an OpenAI and a simulator deployment.
    private const string QuickStart = """
        {
          "LlmProxy": {
            "Simulator": { "Enabled": true },
            "Tenants": { "demo": { "Keys": { "demo-key": "aaaa" } } },
            "Models": {
              "gpt-4o-mini": { "Deployments": { "openai-gpt-4o-mini": { "Provider": "openai" }, "simulator-gpt-4o-mini": { "Provider": "openai" } } },
              "gpt-4o": { "Deployments": { "simulator-gpt-4o": { "Provider": "openai" } } }
            }
          }
        }
        """;

    private readonly DirectoryInfo _directory = Directory.CreateTempSubdirectory("llmproxy-quickstart-");

    public void Dispose() => _directory.Delete(recursive: true);

    private LlmProxyOptions Bind(Dictionary<string, string?> operatorValues)
    {
        File.WriteAllText(Path.Combine(_directory.FullName, "appsettings.json"), QuickStart);
        var appSettings = new LastGoodJsonConfigurationSource { Path = Path.Combine(_directory.FullName, "appsettings.json"), HoldsQuickStartDefaults = true };
        appSettings.ResolveFileProvider();
        var configuration = new ConfigurationBuilder()
            .Add(appSettings)
            .Add(new MemoryConfigurationSource { InitialData = operatorValues })
            .Build();
        var services = new ServiceCollection();
        services.AddOptions<LlmProxyOptions>().Bind(configuration.GetSection(LlmProxyOptions.SectionName));
        services.AddSingleton<IPostConfigureOptions<LlmProxyOptions>>(new QuickStartDefaults(configuration));
        using var provider = services.BuildServiceProvider();
        return provider.GetRequiredService<IOptions<LlmProxyOptions>>().Value;
    }

    [Fact]
    public void PostConfigure_NoTenantOfItsOwn_QuickStartKept()
    {
        var options = Bind(new() { ["LlmProxy:Models:house:Deployments:vllm:Provider"] = "openai" });

        Assert.Equal(["demo"], options.Tenants.Keys);
        Assert.Equal(["gpt-4o", "gpt-4o-mini", "house"], options.Models.Keys.Order());
        Assert.True(options.Simulator.Enabled);
        Assert.Empty(options.QuickStartDefaultsLeftOut);
    }

    [Fact]
    public void PostConfigure_TenantOfItsOwn_DemoTenantModelsAndSimulatorLeftOut()
    {
        var options = Bind(new()
        {
            ["LlmProxy:Tenants:payments:Keys:prod"] = "bbbb",
            ["LlmProxy:Models:house:Deployments:vllm:Provider"] = "openai",
        });

        Assert.Equal(["payments"], options.Tenants.Keys);
        Assert.Equal(["house"], options.Models.Keys);
        Assert.False(options.Simulator.Enabled);
        Assert.Equal(["tenant 'demo'", "model 'gpt-4o'", "model 'gpt-4o-mini'", "the embedded simulator"], options.QuickStartDefaultsLeftOut);
    }

    [Fact]
    public void PostConfigure_OperatorReusesDemoAndModelNames_KeepsOnlyTheOperatorsKeysAndDeployments()
    {
        var options = Bind(new()
        {
            ["LlmProxy:Tenants:DEMO:AllowedModels:0"] = "gpt-4o",
            ["LlmProxy:Tenants:payments:Keys:prod"] = "bbbb",
            ["LlmProxy:Models:gpt-4o:Deployments:azure:Provider"] = "openai",
            ["LlmProxy:Simulator:Enabled"] = "true",
        });

        // The published key never survives under a tenant of the same name (which then has no key: a startup error).
        Assert.Empty(Assert.Single(options.Tenants, t => t.Key.Equals("demo", StringComparison.OrdinalIgnoreCase)).Value.Keys);
        Assert.Equal(["azure"], options.Models["gpt-4o"].Deployments.Keys);
        Assert.DoesNotContain("gpt-4o-mini", options.Models.Keys);
        // Turned on by the operator, not only by the quick start.
        Assert.True(options.Simulator.Enabled);
    }

    [Fact]
    public void PostConfigure_KeepQuickStartDefaults_EverythingKept()
    {
        var options = Bind(new()
        {
            ["LlmProxy:KeepQuickStartDefaults"] = "true",
            ["LlmProxy:Tenants:payments:Keys:prod"] = "bbbb",
        });

        Assert.Equal(["demo", "payments"], options.Tenants.Keys.Order());
        Assert.Contains("gpt-4o-mini", options.Models.Keys);
        Assert.True(options.Simulator.Enabled);
        Assert.Empty(options.QuickStartDefaultsLeftOut);
    }
}
