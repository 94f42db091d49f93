using LlmProxy.Configuration;
using LlmProxy.OpenAi;
using LlmProxy.Routing;

namespace LlmProxy.Providers.OpenAi;

/// <summary>OpenAI, Azure-style OpenAI-compatible servers, vLLM, Ollama, llama.cpp: anything that speaks <c>/chat/completions</c>.</summary>
internal sealed class OpenAiProvider : IChatProvider
{
    public const string ProviderName = "openai";

    public string Name => ProviderName;

    public void Validate(string path, DeploymentOptions options, ICollection<string> errors)
    {
        if (string.IsNullOrWhiteSpace(options.BaseUrl))
        {
            errors.Add($"{path}:BaseUrl is required for provider 'openai' (e.g. https://api.openai.com/v1).");
        }
    }

    public Uri GetBaseUri(DeploymentOptions options) => new(options.BaseUrl!, UriKind.Absolute);

    public IUpstreamAuthenticator CreateAuthenticator(string deploymentId, DeploymentOptions options) =>
        BearerTokenAuthenticator.FromEnvironment(options.ApiKeyEnv);

    public IChatTranslator CreateTranslator(ChatRequest request, Deployment deployment) => new OpenAiTranslator(request, deployment);
}
