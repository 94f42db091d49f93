using LlmProxy.Configuration;
using LlmProxy.Simulator;
using Microsoft.Extensions.Options;

namespace LlmProxy.Hosting;

/// <summary>
/// Starts the LLM simulator inside the gateway process when <c>LlmProxy:Simulator:Enabled</c> is true, so the
/// quick start answers without any provider key. Requests still reach it over loopback HTTP through the
/// same forwarding path as a real provider.
/// </summary>
internal sealed partial class EmbeddedSimulatorService(IOptions<LlmProxyOptions> options, ILogger<EmbeddedSimulatorService> logger) : IHostedService, IAsyncDisposable
{
    private SimulatorServer? _server;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value.Simulator;
        if (!settings.Enabled)
        {
            return;
        }
        _server = await SimulatorServer.StartAsync(new SimulatorOptions(), settings.Url, cancellationToken);
        LogStarted(logger, _server.BaseAddress);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_server is not null)
        {
            await _server.StopAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
            _server = null;
        }
    }

    [LoggerMessage(EventId = 1101, Level = LogLevel.Information, Message = "Embedded LLM simulator listening on {Address} (quick-start mode; not for production)")]
    private static partial void LogStarted(ILogger logger, Uri address);
}
