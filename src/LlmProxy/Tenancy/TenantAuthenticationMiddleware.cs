using LlmProxy.Configuration;
using LlmProxy.OpenAi;

namespace LlmProxy.Tenancy;

/// <summary>
/// Resolves <c>Authorization: Bearer &lt;key&gt;</c> to a tenant for every <c>/v1</c> request. The key is
/// hashed and looked up; it is never logged, stored or forwarded.
/// </summary>
internal sealed class TenantAuthenticationMiddleware(RequestDelegate next, GatewayConfigurationProvider configuration)
{
    public Task InvokeAsync(HttpContext context)
    {
        if (!context.Request.Path.StartsWithSegments("/v1"))
        {
            return next(context);
        }

        var key = BearerToken.Read(context.Request);
        if (key is null)
        {
            return ErrorResponseWriter.WriteAsync(context, GatewayErrors.InvalidApiKey(missing: true));
        }
        if (!configuration.Current.KeysByHash.TryGetValue(ApiKeyHasher.Hash(key), out var identity))
        {
            return ErrorResponseWriter.WriteAsync(context, GatewayErrors.InvalidApiKey(missing: false));
        }
        context.Features.Set<ITenantFeature>(new TenantFeature(identity));
        return next(context);
    }
}

internal static class BearerToken
{
    public static string? Read(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        if (header.Length <= scheme.Length || !header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }
        var token = header[scheme.Length..].Trim();
        return token.Length == 0 ? null : token;
    }
}
