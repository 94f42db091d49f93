using System.Text.Json.Serialization;
using LlmProxy.OpenAi;
using LlmProxy.Tenancy;

namespace LlmProxy.Routing;

/// <summary>
/// <c>GET /admin/deployments</c> shows every deployment's breaker and statistics;
/// <c>POST /admin/deployments/{id}/drain|recover|reset</c> lets an operator take one out, put it back, or zero its statistics.
/// </summary>
public static class DeploymentAdminEndpoints
{
    public static IEndpointRouteBuilder MapDeploymentAdmin(this IEndpointRouteBuilder endpoints)
    {
        var admin = endpoints.MapAdminGroup();
        admin.MapGet("/deployments", (DeploymentHealthRegistry registry) =>
            Results.Json(new DeploymentList(registry.All.Select(h => h.Snapshot()).ToArray()), RoutingJsonContext.Default.DeploymentList));
        admin.MapPost("/deployments/{id}/{action}", async (string id, string action, DeploymentHealthRegistry registry) =>
        {
            if (!registry.TryGet(id, out var health))
            {
                return new OpenAiErrorResult(new GatewayError(StatusCodes.Status404NotFound,
                    new OpenAiError($"No deployment '{id}'.", GatewayErrors.InvalidRequest, "id", "deployment_not_found")));
            }
            switch (action)
            {
                case "drain": await health.DrainAsync(); break;
                case "recover": await health.RecoverAsync(); break;
                case "reset": health.ResetStatistics(); break;
                default:
                    return new OpenAiErrorResult(new GatewayError(StatusCodes.Status404NotFound,
                        new OpenAiError($"Unknown action '{action}'; use drain, recover or reset.", GatewayErrors.InvalidRequest, "action", "unknown_action")));
            }
            return Results.Json(health.Snapshot(), RoutingJsonContext.Default.DeploymentHealthSnapshot);
        });
        return endpoints;
    }
}

public sealed record DeploymentList([property: JsonPropertyName("data")] IReadOnlyList<DeploymentHealthSnapshot> Data);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(DeploymentList))]
[JsonSerializable(typeof(DeploymentHealthSnapshot))]
internal sealed partial class RoutingJsonContext : JsonSerializerContext;
