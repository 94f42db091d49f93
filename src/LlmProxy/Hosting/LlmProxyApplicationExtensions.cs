using LlmProxy.Configuration;
using LlmProxy.Health;
using LlmProxy.Metering;
using LlmProxy.OpenAi;
using LlmProxy.Routing;
using LlmProxy.Telemetry;
using LlmProxy.Tenancy;

namespace LlmProxy.Hosting;

public static class LlmProxyApplicationExtensions
{
    /// <summary>Adds the gateway's middleware and endpoints: request ids, errors, tenant authentication, the OpenAI API and health.</summary>
    public static WebApplication UseLlmProxy(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);

        // Build the configuration now so that an invalid one stops startup with every problem listed.
        _ = app.Services.GetRequiredService<GatewayConfigurationProvider>();

        app.UseLlmProxyListeners();
        app.UseMiddleware<RequestIdMiddleware>();
        app.UseMiddleware<RequestLimitsMiddleware>();
        app.UseMiddleware<GatewayErrorMiddleware>();
        app.UseRouting();
        app.UseMiddleware<TenantAuthenticationMiddleware>();

        app.MapLlmProxyHealth();
        app.MapLlmProxyMetrics();
        app.MapDeploymentAdmin();
        app.MapConfigurationAdmin();
        app.MapLlmProxyMetering();
        var v1 = app.MapGroup("/v1");
        v1.MapPost("/chat/completions", (HttpContext http, ChatCompletionsEndpoint endpoint) => endpoint.HandleAsync(http));
        v1.MapGet("/models", (HttpContext http, ModelsEndpoint endpoint) => endpoint.List(http));
        // Catch-all: model names may contain '/' (vLLM and Hugging Face ids such as meta-llama/Llama-3.1-8B-Instruct).
        v1.MapGet("/models/{**id}", (HttpContext http, string id, ModelsEndpoint endpoint) => endpoint.Get(http, id));
        return app;
    }
}
