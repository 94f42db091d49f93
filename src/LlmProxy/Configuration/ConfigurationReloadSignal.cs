using System.Runtime.InteropServices;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace LlmProxy.Configuration;

/// <summary>
/// SIGHUP reloads the configuration, as <c>POST /admin/config/reload</c> does, instead of terminating the process (the
/// default action of SIGHUP): <c>kill -HUP &lt;pid&gt;</c>. The outcome is logged (event ids 1007 and 1008). Not on Windows,
/// which has no SIGHUP.
/// </summary>
internal sealed class ConfigurationReloadSignal(ConfigurationReloader reloader) : IHostedService, IDisposable
{
    private PosixSignalRegistration? _registration;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!OperatingSystem.IsWindows())
        {
            _registration = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
            {
                context.Cancel = true;
                reloader.Reload("SIGHUP");
            });
        }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        Dispose();
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        _registration?.Dispose();
        _registration = null;
    }
}

public static class ConfigurationReloadServiceCollectionExtensions
{
    /// <summary>
    /// Adds the explicit configuration reload: the reloader behind <c>POST /admin/config/reload</c>, and SIGHUP. It is also
    /// created at startup, so that a change to a watched file that cannot be applied is logged.
    /// </summary>
    public static IServiceCollection AddLlmProxyConfigurationReload(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton<ConfigurationReloader>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, ConfigurationReloadSignal>());
        return services;
    }
}
