using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace LlmProxy.Simulator.Bedrock;

/// <summary>Wires the simulated Bedrock Runtime into the simulator's app.</summary>
internal static class BedrockEndpoints
{
    /// <summary>The SigV4 signing name of Bedrock Runtime (its endpoint prefix is <c>bedrock-runtime</c>, its signing name <c>bedrock</c>).</summary>
    public const string SigningName = "bedrock";

    public static IServiceCollection AddBedrock(this IServiceCollection services, SimulatorOptions settings)
    {
        services.AddSingleton<ConverseEndpoint>();
        services.AddSingleton(provider => new SigV4Verifier(
            settings.BedrockCredentials.ToDictionary(StringComparer.Ordinal),
            SigningName,
            provider.GetRequiredService<TimeProvider>()));
        return services;
    }

    /// <summary>Rejects unsigned or wrongly signed <c>/model/</c> requests when the options ask for signatures.</summary>
    public static IApplicationBuilder UseBedrockSignatures(this IApplicationBuilder app, SimulatorOptions settings) =>
        settings.BedrockRequireSignature ? app.UseMiddleware<SigV4Middleware>() : app;

    /// <summary>
    /// <c>POST /model/{modelId}/converse</c> and <c>/converse-stream</c>. One catch-all route, because the model id may hold
    /// an encoded <c>/</c> (inference-profile ARNs); the handler reads the operation and the id from the raw target.
    /// </summary>
    public static void MapBedrock(this IEndpointRouteBuilder endpoints) =>
        endpoints.MapPost(BedrockPaths.Root + "/{**operation}", context =>
            context.RequestServices.GetRequiredService<ConverseEndpoint>().HandleAsync(context));
}
