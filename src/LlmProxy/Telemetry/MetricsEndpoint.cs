using System.Security.Cryptography;
using System.Text;
using LlmProxy.Configuration;
using LlmProxy.Hosting;
using LlmProxy.Tenancy;
using Microsoft.Extensions.Options;

namespace LlmProxy.Telemetry;

public static class MetricsEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps <c>GET /metrics</c>, served by OpenTelemetry's Prometheus exporter, as configured in <c>LlmProxy:Metrics</c>:
    /// call it at startup. Does nothing when <see cref="MetricsOptions.Enabled"/> is false. With
    /// <see cref="MetricsOptions.Port"/> set the endpoint only answers connections accepted on that port (404 elsewhere),
    /// which must also be one the gateway listens on (<c>Urls</c> or Kestrel endpoints); with
    /// <see cref="MetricsOptions.ApiKeyHash"/> set it wants that key as a bearer token (401 without it). Invalid options
    /// stop startup with a <see cref="GatewayConfigurationException"/> listing every problem.
    /// </summary>
    public static IEndpointRouteBuilder MapLlmProxyMetrics(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var services = endpoints.ServiceProvider;
        MetricsOptions options;
        try
        {
            options = services.GetRequiredService<IOptions<MetricsOptions>>().Value;
        }
        catch (OptionsValidationException ex)
        {
            throw new GatewayConfigurationException([.. ex.Failures]);
        }
        if (!options.Enabled)
        {
            return endpoints;
        }

        // Create the instruments now: their observable gauges should be there from the first scrape.
        _ = services.GetRequiredService<GatewayMetrics>();

        // The port is checked on the connection, not with RequireHost("*:port"): host matching reads the Host header,
        // which the client writes, so a request to the public port with "Host: x:9464" would get through.
        var guard = new MetricsEndpointGuard(options.ApiKeyHash, options.Port);
        endpoints.MapPrometheusScrapingEndpoint(options.Path, meterProvider: null, branch => branch.Use(guard.InvokeAsync), optionsName: null)
            .WithDisplayName("LlmProxy metrics")
            .RequireManagementListener();
        return endpoints;
    }
}

/// <summary>Stands in front of the exporter: the port, then the optional bearer key; a scrape is never cached.</summary>
internal sealed class MetricsEndpointGuard
{
    private readonly byte[]? _keyHash;
    private readonly int? _port;

    public MetricsEndpointGuard(string? apiKeyHash, int? port)
    {
        _keyHash = string.IsNullOrEmpty(apiKeyHash) ? null : Encoding.ASCII.GetBytes(apiKeyHash.ToLowerInvariant());
        _port = port;
    }

    public Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var response = context.Response;
        if (_port is { } port && context.Connection.LocalPort != port)
        {
            // As if the endpoint did not exist on this port; the gateway's error middleware gives bare 404s their body.
            response.StatusCode = StatusCodes.Status404NotFound;
            return Task.CompletedTask;
        }
        response.Headers.CacheControl = "no-store";
        if (_keyHash is not null && !IsAuthorized(context.Request))
        {
            response.StatusCode = StatusCodes.Status401Unauthorized;
            response.Headers.WWWAuthenticate = "Bearer realm=\"metrics\"";
            response.ContentType = "text/plain; charset=utf-8";
            return response.WriteAsync("A valid metrics key is required: Authorization: Bearer <key>.\n", context.RequestAborted);
        }
        return next(context);
    }

    private bool IsAuthorized(HttpRequest request)
    {
        if (BearerToken.Read(request) is not { } key)
        {
            return false;
        }
        var hash = Encoding.ASCII.GetBytes(ApiKeyHasher.Hash(key));
        return CryptographicOperations.FixedTimeEquals(hash, _keyHash);
    }
}
