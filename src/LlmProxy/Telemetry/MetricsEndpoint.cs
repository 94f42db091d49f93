using System.IO.Compression;
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
    /// Maps <c>GET /metrics</c> (Prometheus text format 0.0.4) as configured in <c>LlmProxy:Metrics</c>, and starts
    /// collecting: call it at startup. Does nothing when <see cref="MetricsOptions.Enabled"/> is false. With
    /// <see cref="MetricsOptions.Port"/> set the endpoint only answers connections accepted on that port (404 elsewhere),
    /// which must also be one the gateway listens on (<c>Urls</c> or Kestrel endpoints). Invalid options stop startup
    /// with a <see cref="GatewayConfigurationException"/> listing every problem.
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

        // Create both now: the collector only sees what is measured after it exists, and the gateway's instruments
        // (with their observable gauges) should be there from the first scrape.
        var collector = services.GetRequiredService<MetricsCollector>();
        _ = services.GetRequiredService<GatewayMetrics>();

        // The port is checked on the connection, not with RequireHost("*:port"): host matching reads the Host header,
        // which the client writes, so a request to the public port with "Host: x:9464" would get through.
        var endpoint = new MetricsEndpoint(collector, options.ApiKeyHash, options.Port);
        endpoints.MapGet(options.Path, endpoint.HandleAsync).WithDisplayName("LlmProxy metrics").RequireManagementListener();
        return endpoints;
    }
}

/// <summary>Serves a scrape: checks the port and the optional bearer key, collects, and writes the text (gzip when the scraper accepts it).</summary>
internal sealed class MetricsEndpoint
{
    private readonly MetricsCollector _collector;
    private readonly byte[]? _keyHash;
    private readonly int? _port;

    public MetricsEndpoint(MetricsCollector collector, string? apiKeyHash, int? port)
    {
        _collector = collector;
        _keyHash = string.IsNullOrEmpty(apiKeyHash) ? null : Encoding.ASCII.GetBytes(apiKeyHash.ToLowerInvariant());
        _port = port;
    }

    public async Task HandleAsync(HttpContext context)
    {
        var response = context.Response;
        if (_port is { } port && context.Connection.LocalPort != port)
        {
            // As if the endpoint did not exist on this port; the gateway's error middleware gives bare 404s their body.
            response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }
        response.Headers.CacheControl = "no-store";
        if (_keyHash is not null && !IsAuthorized(context.Request))
        {
            response.StatusCode = StatusCodes.Status401Unauthorized;
            response.Headers.WWWAuthenticate = "Bearer realm=\"metrics\"";
            response.ContentType = "text/plain; charset=utf-8";
            await response.WriteAsync("A valid metrics key is required: Authorization: Bearer <key>.\n", context.RequestAborted);
            return;
        }

        var body = Encoding.UTF8.GetBytes(_collector.Collect());
        response.ContentType = PrometheusTextWriter.ContentType;
        response.Headers.Vary = "Accept-Encoding";
        if (AcceptsGzip(context.Request))
        {
            response.Headers.ContentEncoding = "gzip";
            await using var gzip = new GZipStream(response.Body, CompressionLevel.Fastest, leaveOpen: true);
            await gzip.WriteAsync(body, context.RequestAborted);
            return;
        }
        response.ContentLength = body.Length;
        await response.Body.WriteAsync(body, context.RequestAborted);
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

    private static bool AcceptsGzip(HttpRequest request)
    {
        foreach (var value in request.GetTypedHeaders().AcceptEncoding)
        {
            if (value.Value.Equals("gzip", StringComparison.OrdinalIgnoreCase) && (value.Quality is null or > 0))
            {
                return true;
            }
        }
        return false;
    }
}
