using LlmProxy.Tenancy;

namespace LlmProxy.Metering;

public static class MeteringEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps the usage and pricing API: <c>GET /v1/usage</c>, <c>/v1/usage/estimate</c>, <c>/v1/pricing</c>,
    /// <c>/v1/pricing/compare</c> (tenant keys) and <c>GET /admin/usage</c>, <c>/admin/usage/estimate</c> (admin keys). Loads the
    /// pricing file now, so that an invalid one stops startup with every problem listed. Needs <c>AddLlmProxyMetering()</c>;
    /// a second call maps nothing.
    /// </summary>
    public static IEndpointRouteBuilder MapLlmProxyMetering(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var marker = endpoints.ServiceProvider.GetService<MeteringMarker>()
            ?? throw new InvalidOperationException("MapLlmProxyMetering needs AddLlmProxyMetering() in the service registrations.");
        if (!marker.TryMapEndpoints())
        {
            return endpoints;
        }
        _ = endpoints.ServiceProvider.GetRequiredService<PriceTableProvider>();

        var v1 = endpoints.MapGroup("/v1");
        v1.MapGet("/usage", (HttpContext http, UsageEndpoints usage) => usage.TenantUsageAsync(http));
        v1.MapGet("/usage/estimate", (HttpContext http, UsageEndpoints usage) => usage.TenantEstimateAsync(http));
        v1.MapGet("/pricing", (UsageEndpoints usage) => usage.ListPrices());
        v1.MapGet("/pricing/compare", (HttpContext http, UsageEndpoints usage) => usage.Compare(http));

        var admin = endpoints.MapAdminGroup();
        admin.MapGet("/usage", (HttpContext http, UsageEndpoints usage) => usage.AdminUsageAsync(http));
        admin.MapGet("/usage/estimate", (HttpContext http, UsageEndpoints usage) => usage.AdminEstimateAsync(http));
        return endpoints;
    }
}
