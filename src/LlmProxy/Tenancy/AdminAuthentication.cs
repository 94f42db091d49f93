using LlmProxy.Configuration;
using LlmProxy.Hosting;
using LlmProxy.OpenAi;

namespace LlmProxy.Tenancy;

/// <summary>
/// Admin endpoints live under <c>/admin</c> and need an admin key (<c>LlmProxy:AdminKeys</c>), which is
/// never a tenant key. With no admin key configured, every admin endpoint answers 401. With a management port
/// (<c>LlmProxy:Management:Port</c>) they are served on that port only.
/// </summary>
public static class AdminAuthentication
{
    public const string PathPrefix = "/admin";

    /// <summary>The route group every feature adds its admin endpoints to.</summary>
    public static RouteGroupBuilder MapAdminGroup(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var group = endpoints.MapGroup(PathPrefix).RequireManagementListener();
        group.AddEndpointFilter(async (context, next) =>
        {
            var http = context.HttpContext;
            var key = BearerToken.Read(http.Request);
            var configuration = http.RequestServices.GetRequiredService<GatewayConfigurationProvider>().Current;
            if (key is null || !configuration.AdminKeyHashes.Contains(ApiKeyHasher.Hash(key)))
            {
                var error = new GatewayError(StatusCodes.Status401Unauthorized, new OpenAiError(
                    key is null ? "This endpoint needs an admin key in the Authorization header." : "Incorrect admin key provided.",
                    GatewayErrors.InvalidRequest, null, "invalid_admin_key"));
                return new OpenAiErrorResult(error);
            }
            return await next(context);
        });
        return group;
    }
}
