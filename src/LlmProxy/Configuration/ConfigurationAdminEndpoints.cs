using System.Text.Json.Serialization;
using LlmProxy.OpenAi;
using LlmProxy.Tenancy;

namespace LlmProxy.Configuration;

/// <summary>
/// <c>POST /admin/config/reload</c>: re-reads every configuration source now (the equivalent of SIGHUP for
/// sources that are not watched, e.g. environment-provided secrets) and applies the result if it is valid.
/// Files are also watched, so an edit applies without this call.
/// </summary>
public static class ConfigurationAdminEndpoints
{
    public static IEndpointRouteBuilder MapConfigurationAdmin(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapAdminGroup().MapPost("/config/reload", (IConfiguration configuration, GatewayConfigurationProvider provider) =>
        {
            if (configuration is IConfigurationRoot root)
            {
                root.Reload();
            }
            var options = new LlmProxyOptions();
            configuration.GetSection(LlmProxyOptions.SectionName).Bind(options);
            var problems = provider.Reload(options);
            if (problems.Count > 0)
            {
                return new OpenAiErrorResult(new GatewayError(StatusCodes.Status400BadRequest, new OpenAiError(
                    "The configuration is invalid and was not applied: " + string.Join(" | ", problems), GatewayErrors.InvalidRequest, null, "invalid_configuration")));
            }
            var current = provider.Current;
            return Results.Json(new ReloadResult(current.Routes.Count, current.KeysByHash.Count, current.Warnings), ConfigurationJsonContext.Default.ReloadResult);
        });
        return endpoints;
    }
}

public sealed record ReloadResult(int Models, int TenantKeys, IReadOnlyList<string> Warnings);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(ReloadResult))]
internal sealed partial class ConfigurationJsonContext : JsonSerializerContext;
