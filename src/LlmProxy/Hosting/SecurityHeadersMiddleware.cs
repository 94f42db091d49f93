using Microsoft.Net.Http.Headers;

namespace LlmProxy.Hosting;

/// <summary>
/// Headers every response carries, errors and streams included: <c>X-Content-Type-Options: nosniff</c>, no <c>Server</c>
/// header (Kestrel's is off, see <see cref="ManagementListenerExtensions"/>; one copied from a provider's answer is
/// removed), and on HTTPS <c>Strict-Transport-Security</c>. Set when the response starts rather than on entry:
/// the error middleware clears the headers of a failed response before it writes the error, and ASP.NET Core's HSTS
/// middleware, which sets the header on entry, would lose it there.
/// </summary>
internal sealed class SecurityHeadersMiddleware(RequestDelegate next)
{
    /// <summary>One year, without includeSubDomains (the gateway cannot speak for other hosts of the domain).</summary>
    internal const string StrictTransportSecurity = "max-age=31536000";

    private static readonly Func<object, Task> OnStarting = state =>
    {
        var context = (HttpContext)state;
        var headers = context.Response.Headers;
        headers.XContentTypeOptions = "nosniff";
        headers.Remove(HeaderNames.Server);
        if (context.Request.IsHttps)
        {
            // Unlike UseHsts(), also for localhost and IP addresses: browsers ignore it there anyway (RFC 6797, 8.1).
            headers.StrictTransportSecurity = StrictTransportSecurity;
        }
        return Task.CompletedTask;
    };

    public Task InvokeAsync(HttpContext context)
    {
        context.Response.OnStarting(OnStarting, context);
        return next(context);
    }
}
