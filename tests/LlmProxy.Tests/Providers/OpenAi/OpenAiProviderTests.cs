using LlmProxy.Providers;
using LlmProxy.Providers.OpenAi;

namespace LlmProxy.Tests.Providers.OpenAi;

public sealed class OpenAiProviderTests
{
    private static readonly IChatProvider Provider = new OpenAiProvider();

    [Fact]
    public void GenAiProviderName_OpenAi_IsTheSemanticConventionValue() => Assert.Equal("openai", Provider.GenAiProviderName);

    [Fact]
    public void UpstreamRequestIdHeaders_OpenAi_AreRequestId() => Assert.Equal(["x-request-id"], Provider.UpstreamRequestIdHeaders);

    [Fact]
    public void AddOpenAiProvider_CalledTwice_RegistersTheProviderOnce()
    {
        var services = new ServiceCollection().AddOpenAiProvider().AddOpenAiProvider();

        using var provider = services.BuildServiceProvider();
        Assert.Equal("openai", Assert.Single(provider.GetServices<IChatProvider>()).Name);
    }
}
