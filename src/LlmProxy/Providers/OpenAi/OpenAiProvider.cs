using LlmProxy.Configuration;
using LlmProxy.OpenAi;
using LlmProxy.Routing;

namespace LlmProxy.Providers.OpenAi;

/// <summary>OpenAI, Azure-style OpenAI-compatible servers, vLLM, Ollama, llama.cpp: anything that speaks <c>/chat/completions</c>.</summary>
internal sealed class OpenAiProvider : IChatProvider
{
    public const string ProviderName = "openai";

    /// <summary>OpenAI and most compatible servers (vLLM, LiteLLM, Azure OpenAI) name their request id in <c>x-request-id</c>.</summary>
    private static readonly string[] RequestIdHeaders = ["x-request-id"];

    public string Name => ProviderName;

    /// <summary><c>openai</c>, also the OpenTelemetry GenAI well-known value.</summary>
    public string GenAiProviderName => ProviderName;

    public IReadOnlyList<string> UpstreamRequestIdHeaders => RequestIdHeaders;

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
