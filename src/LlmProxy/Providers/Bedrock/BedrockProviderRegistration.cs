using Microsoft.Extensions.DependencyInjection.Extensions;

namespace LlmProxy.Providers.Bedrock;

public static class BedrockProviderRegistration
{
    /// <summary>
    /// Registers the <c>bedrock</c> provider (Bedrock Runtime's Converse API, SigV4 or a Bedrock API key). A host that
    /// registered a <see cref="IChatProvider"/> of the same type first (with other default credentials, say) keeps its own.
    /// </summary>
    public static IServiceCollection AddBedrockProvider(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IChatProvider, BedrockProvider>());
        return services;
    }
}
