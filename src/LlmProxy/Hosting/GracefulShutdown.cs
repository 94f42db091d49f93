using LlmProxy.Configuration;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http.Features;

namespace LlmProxy.Hosting;

/// <summary>
/// Shutdown (SIGTERM) in two budgets. First the server stops accepting connections and lets in-flight requests and streams
/// run for <see cref="LlmProxyOptions.ShutdownGracePeriod"/>, then cuts what is left. Then the hosted services stop, the
/// usage ledger's flush among them, within <see cref="LlmProxyOptions.ShutdownFlushTimeout"/>. With a single budget (the
/// host's <see cref="HostOptions.ShutdownTimeout"/>) a stream cut at the end of the grace period would leave the ledger no
/// time at all: the records of those streams would go to the spill file instead of the store, and a spill file on a
/// container's ephemeral disk does not outlive the container.
/// </summary>
internal static class GracefulShutdown
{
    public static IServiceCollection AddLlmProxyGracefulShutdown(this IServiceCollection services, IConfiguration configuration)
    {
        // Read here rather than through options: the host and the server take their shutdown budgets before any options
        // are resolved. Both are validated with the rest of the section at startup.
        var section = configuration.GetSection(LlmProxyOptions.SectionName);
        var defaults = new LlmProxyOptions();
        var grace = section.GetValue(nameof(LlmProxyOptions.ShutdownGracePeriod), defaults.ShutdownGracePeriod);
        var flush = section.GetValue(nameof(LlmProxyOptions.ShutdownFlushTimeout), defaults.ShutdownFlushTimeout);
        if (grace < TimeSpan.Zero || flush <= TimeSpan.Zero)
        {
            // Reported as a configuration problem when the gateway configuration is built; keep the defaults meanwhile.
            (grace, flush) = (defaults.ShutdownGracePeriod, defaults.ShutdownFlushTimeout);
        }
        services.Configure<HostOptions>(host => host.ShutdownTimeout = grace + flush);

        // Kestrel drains until the token it is given fires: give it one that fires at the end of the grace period.
        if (services.LastOrDefault(d => d.ServiceType == typeof(IServer)) is { ImplementationType: { } serverType } server)
        {
            services.Remove(server);
            services.Add(ServiceDescriptor.Describe(serverType, serverType, server.Lifetime));
            services.Add(ServiceDescriptor.Describe(typeof(IServer),
                sp => new GracePeriodServer((IServer)sp.GetRequiredService(serverType), grace), server.Lifetime));
        }
        return services;
    }

    /// <summary>The server, with its graceful stop bounded by the grace period.</summary>
    private sealed class GracePeriodServer(IServer inner, TimeSpan gracePeriod) : IServer
    {
        public IFeatureCollection Features => inner.Features;

        public Task StartAsync<TContext>(IHttpApplication<TContext> application, CancellationToken cancellationToken) where TContext : notnull =>
            inner.StartAsync(application, cancellationToken);

        public async Task StopAsync(CancellationToken cancellationToken)
        {
            using var grace = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            grace.CancelAfter(gracePeriod);
            await inner.StopAsync(grace.Token);
        }

        public void Dispose() => inner.Dispose();
    }
}
