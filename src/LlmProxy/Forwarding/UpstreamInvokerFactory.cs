using System.Diagnostics;
using System.Net;
using LlmProxy.Configuration;

namespace LlmProxy.Forwarding;

/// <summary>
/// Creates the HTTP client used to reach one deployment, configured the way YARP recommends for a proxy:
/// no cookies, redirects, decompression or system proxy; connect timeout per deployment.
/// </summary>
internal static class UpstreamInvokerFactory
{
    public static HttpMessageInvoker Create(DeploymentTimeoutOptions timeouts) => new(new SocketsHttpHandler
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        UseCookies = false,
        EnableMultipleHttp2Connections = true,
        ConnectTimeout = timeouts.Connect,
        // Re-resolve DNS now and then so a provider moving its endpoints is followed.
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        // Propagates W3C traceparent from the current Activity to the upstream.
        ActivityHeadersPropagator = DistributedContextPropagator.Current,
    }, disposeHandler: true);
}
