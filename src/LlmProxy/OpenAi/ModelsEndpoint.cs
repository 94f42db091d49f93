using Microsoft.AspNetCore.Http.Features;
using LlmProxy.Configuration;
using LlmProxy.Tenancy;

namespace LlmProxy.OpenAi;

/// <summary><c>GET /v1/models</c> and <c>GET /v1/models/{id}</c>: the models the calling tenant may use.</summary>
internal sealed class ModelsEndpoint(GatewayConfigurationProvider configuration, TimeProvider time)
{
    // Models have no creation date of their own here; the gateway's start time is stable for a process.
    private readonly long _created = time.GetUtcNow().ToUnixTimeSeconds();

    public IResult List(HttpContext http)
    {
        var tenant = http.Features.GetRequiredFeature<ITenantFeature>().Identity.Tenant;
        var models = configuration.Current.Routes.Keys
            .Where(tenant.Allows)
            .Order(StringComparer.Ordinal)
            .Select(ToModel)
            .ToArray();
        return Results.Json(new ModelList("list", models), OpenAiJsonContext.Default.ModelList);
    }

    public IResult Get(HttpContext http, string id)
    {
        // The server decodes every escape of the path but %2F (it would change the segments); a client that escaped the
        // '/' of a model id sent it that way.
        id = id.Replace("%2F", "/", StringComparison.OrdinalIgnoreCase);
        var tenant = http.Features.GetRequiredFeature<ITenantFeature>().Identity.Tenant;
        if (!configuration.Current.Routes.ContainsKey(id) || !tenant.Allows(id))
        {
            return new OpenAiErrorResult(GatewayErrors.ModelNotFound(id));
        }
        return Results.Json(ToModel(id), OpenAiJsonContext.Default.ModelObject);
    }

    private ModelObject ToModel(string id) => new(id, "model", _created, "llmproxy");
}
