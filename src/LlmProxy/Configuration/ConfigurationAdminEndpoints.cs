using System.Text.Json.Serialization;
using LlmProxy.OpenAi;
using LlmProxy.Tenancy;

namespace LlmProxy.Configuration;

/// <summary>
/// <c>POST /admin/config/reload</c>, the HTTP equivalent of SIGHUP: re-reads every configuration source and the pricing
/// file now and applies each part that is valid (routes, tenants and keys, rate limits, the cache policy, prices). It
/// answers 200 when everything was applied, and 400 <c>invalid_configuration</c> listing every problem of every part
/// otherwise; the parts with problems keep their previous configuration. Watched files apply on their own; this is for
/// sources that are not watched, for file systems whose changes the watcher misses, and to learn what a change did.
/// </summary>
public static class ConfigurationAdminEndpoints
{
    public static IEndpointRouteBuilder MapConfigurationAdmin(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapAdminGroup().MapPost("/config/reload", (HttpContext http) =>
        {
            var outcome = http.RequestServices.GetRequiredService<ConfigurationReloader>().Reload("POST /admin/config/reload");
            if (outcome.Problems.Count > 0)
            {
                return new OpenAiErrorResult(new GatewayError(StatusCodes.Status400BadRequest, new OpenAiError(
                    "The configuration change was rejected where it is invalid; those parts keep their previous configuration, the others were applied. "
                    + $"{outcome.Problems.Count} problem(s): " + string.Join(" | ", outcome.Problems),
                    GatewayErrors.InvalidRequest, null, "invalid_configuration")));
            }
            var current = outcome.Gateway;
            return Results.Json(new ReloadResult(current.Routes.Count, current.KeysByHash.Count, outcome.Prices, current.Warnings),
                ConfigurationJsonContext.Default.ReloadResult);
        });
        return endpoints;
    }
}

/// <summary>The answer of a reload that applied everything.</summary>
/// <param name="Models">Client-facing models now routed.</param>
/// <param name="TenantKeys">Tenant API keys now accepted.</param>
/// <param name="Prices">Entries of the price table now in force; null when metering is off.</param>
/// <param name="Warnings">Allowed but probably unintended settings, e.g. a deployment disabled for lack of credentials.</param>
public sealed record ReloadResult(int Models, int TenantKeys, int? Prices, IReadOnlyList<string> Warnings);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(ReloadResult))]
internal sealed partial class ConfigurationJsonContext : JsonSerializerContext;
