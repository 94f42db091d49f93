using Microsoft.Extensions.DependencyInjection.Extensions;

namespace LlmProxy.Providers.OpenAi;

public static class OpenAiProviderRegistration
{
    /// <summary>Registers the <c>openai</c> provider: OpenAI and every server that speaks its <c>/chat/completions</c>.</summary>
    public static IServiceCollection AddOpenAiProvider(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IChatProvider, OpenAiProvider>());
        return services;
    }
}
