using LlmProxy.Configuration;
using Microsoft.Extensions.Options;

namespace LlmProxy.Tests.Configuration;

public sealed class DeploymentConfigurationSectionsTests
{
    private static LlmProxyOptions Bind(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection();
        services.AddOptions<LlmProxyOptions>().Bind(configuration.GetSection(LlmProxyOptions.SectionName));
        services.AddSingleton<IPostConfigureOptions<LlmProxyOptions>>(new DeploymentConfigurationSections(configuration));
        using var provider = services.BuildServiceProvider();
        return provider.GetRequiredService<IOptions<LlmProxyOptions>>().Value;
    }

    [Fact]
    public void PostConfigure_BoundDeployments_EachGetsItsOwnSectionWithProviderOnlyKeys()
    {
        var options = Bind(new()
        {
            ["LlmProxy:Models:claude:Deployments:east:Provider"] = "bedrock",
            ["LlmProxy:Models:claude:Deployments:east:Region"] = "us-east-1",
            ["LlmProxy:Models:claude:Deployments:west:Provider"] = "bedrock",
            ["LlmProxy:Models:claude:Deployments:west:Region"] = "us-west-2",
            ["LlmProxy:Models:gpt:Deployments:oa:Provider"] = "openai",
        });

        var deployments = options.Models["claude"].Deployments;
        Assert.Equal("LlmProxy:Models:claude:Deployments:east", deployments["east"].Configuration!.Path);
        Assert.Equal("us-east-1", deployments["east"].Configuration!["Region"]);
        Assert.Equal("us-west-2", deployments["west"].Configuration!["Region"]);
        Assert.Null(options.Models["gpt"].Deployments["oa"].Configuration!["Region"]);
    }
}
