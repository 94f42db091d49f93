using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using LlmProxy.Configuration;

namespace LlmProxy.Forwarding;

/// <summary>
/// The HTTP clients used to reach deployments, configured the way YARP recommends for a proxy: no cookies, redirects,
/// decompression or system proxy; connect timeout per deployment. One client per distinct connect timeout, kept for
/// the life of the gateway: a configuration reload builds new deployments but reuses these, so reloads neither leak
/// handlers nor drop warm upstream connections. A handler pools connections per upstream host, so deployments sharing
/// one client still keep separate pools.
/// </summary>
internal sealed class UpstreamInvokerFactory : IDisposable
{
    private readonly ConcurrentDictionary<TimeSpan, HttpMessageInvoker> _byConnectTimeout = new();

    public HttpMessageInvoker Get(DeploymentTimeoutOptions timeouts) => _byConnectTimeout.GetOrAdd(timeouts.Connect, Create);

    public void Dispose()
    {
        foreach (var invoker in _byConnectTimeout.Values)
        {
            invoker.Dispose();
        }
        _byConnectTimeout.Clear();
    }

    private static HttpMessageInvoker Create(TimeSpan connectTimeout) => new(new SocketsHttpHandler
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        UseCookies = false,
        EnableMultipleHttp2Connections = true,
        ConnectTimeout = connectTimeout,
        // Re-resolve DNS now and then so a provider moving its endpoints is followed.
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        // Propagates W3C traceparent from the current Activity to the upstream.
        ActivityHeadersPropagator = DistributedContextPropagator.Current,
    }, disposeHandler: true);
}
