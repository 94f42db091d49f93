using System.Globalization;
using LlmProxy.OpenAi;
using Microsoft.AspNetCore.Http.Extensions;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace LlmProxy.Hosting;

/// <summary>
/// The request line and header limits, enforced twice. The web server (Kestrel) refuses what is over its own limits
/// before any gateway code runs, and answers with an empty body that no hook can change. So Kestrel's limits are set a
/// margin above the gateway's documented ones, and <see cref="RequestLimitsMiddleware"/> refuses what is over the
/// documented ones with an OpenAI-shaped body: only requests beyond the hard ceiling (and malformed request or header
/// lines) get the server's bare answer.
/// </summary>
internal static class RequestLimits
{
    /// <summary>Longest request target (path and query, as sent), in bytes: 414 <c>url_too_long</c> above.</summary>
    public const int MaxRequestTargetBytes = 8 * 1024;

    /// <summary>Largest total size of the request headers (each counted as name, value and 4 bytes of framing): 431 above.</summary>
    public const int MaxRequestHeadersTotalBytes = 32 * 1024;

    /// <summary>Most header lines in a request: 431 above.</summary>
    public const int MaxRequestHeaderCount = 100;

    /// <summary>Kestrel's own request line limit (method, target and version), above which it answers 414 with an empty body.</summary>
    public const int ServerMaxRequestLineBytes = 64 * 1024;

    /// <summary>Kestrel's own header size limit, above which it answers 431 with an empty body.</summary>
    public const int ServerMaxRequestHeadersTotalBytes = 128 * 1024;

    /// <summary>Kestrel's own header count limit, above which it answers 431 with an empty body.</summary>
    public const int ServerMaxRequestHeaderCount = 400;

    public static IServiceCollection AddLlmProxyRequestLimits(this IServiceCollection services)
    {
        services.Configure<KestrelServerOptions>(kestrel =>
        {
            kestrel.Limits.MaxRequestLineSize = ServerMaxRequestLineBytes;
            kestrel.Limits.MaxRequestHeadersTotalSize = ServerMaxRequestHeadersTotalBytes;
            kestrel.Limits.MaxRequestHeaderCount = ServerMaxRequestHeaderCount;
        });
        return services;
    }
}

/// <summary>Refuses a request whose target or headers are over the documented limits, in OpenAI's error shape.</summary>
internal sealed class RequestLimitsMiddleware(RequestDelegate next)
{
    public Task InvokeAsync(HttpContext context)
    {
        var target = context.Features.Get<IHttpRequestFeature>()?.RawTarget;
        var targetLength = (target ?? context.Request.GetEncodedPathAndQuery()).Length;
        if (targetLength > RequestLimits.MaxRequestTargetBytes)
        {
            return Refuse(context, StatusCodes.Status414UriTooLong, new OpenAiError(
                $"The request URL is longer than this gateway accepts ({RequestLimits.MaxRequestTargetBytes.ToString(CultureInfo.InvariantCulture)} bytes).",
                GatewayErrors.InvalidRequest, null, "url_too_long"));
        }

        long headerBytes = 0;
        var headerCount = 0;
        foreach (var (name, values) in context.Request.Headers)
        {
            foreach (var value in values)
            {
                headerCount++;
                headerBytes += name.Length + (value?.Length ?? 0) + 4;
            }
        }
        if (headerCount > RequestLimits.MaxRequestHeaderCount)
        {
            return Refuse(context, StatusCodes.Status431RequestHeaderFieldsTooLarge, new OpenAiError(
                $"The request has more headers than this gateway accepts ({RequestLimits.MaxRequestHeaderCount.ToString(CultureInfo.InvariantCulture)}).",
                GatewayErrors.InvalidRequest, null, "request_headers_too_large"));
        }
        if (headerBytes > RequestLimits.MaxRequestHeadersTotalBytes)
        {
            return Refuse(context, StatusCodes.Status431RequestHeaderFieldsTooLarge, new OpenAiError(
                $"The request headers are larger than this gateway accepts ({RequestLimits.MaxRequestHeadersTotalBytes.ToString(CultureInfo.InvariantCulture)} bytes in total).",
                GatewayErrors.InvalidRequest, null, "request_headers_too_large"));
        }
        return next(context);
    }

    private static Task Refuse(HttpContext context, int status, OpenAiError error)
    {
        // The client may still be sending a body the gateway will not read: do not keep the connection for it (HTTP/1.x;
        // HTTP/2 and later have no such header).
        if (HttpProtocol.IsHttp11(context.Request.Protocol) || HttpProtocol.IsHttp10(context.Request.Protocol))
        {
            context.Response.Headers.Connection = "close";
        }
        return ErrorResponseWriter.WriteAsync(context, new GatewayError(status, error));
    }
}
