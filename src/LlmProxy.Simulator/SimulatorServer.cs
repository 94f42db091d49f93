using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace LlmProxy.Simulator;

/// <summary>
/// A running simulator, for tests and for hosts that want it in-process. Start it on port 0 to get a free
/// port; dispose it (or call <see cref="StopAsync"/>) to stop listening.
/// </summary>
public sealed class SimulatorServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _stopped;

    private SimulatorServer(WebApplication app, Uri baseAddress)
    {
        _app = app;
        BaseAddress = baseAddress;
        Faults = app.Services.GetRequiredService<SimulatorFaults>();
        Requests = app.Services.GetRequiredService<SimulatorRecorder>();
    }

    /// <summary>The root the simulator listens on, with a trailing slash, e.g. <c>http://127.0.0.1:43123/</c>.</summary>
    public Uri BaseAddress { get; }

    /// <summary>The OpenAI base URL to give a client: <see cref="BaseAddress"/> + <c>v1</c>.</summary>
    public Uri OpenAiEndpoint => new(BaseAddress, "v1");

    /// <summary>Runtime fault control.</summary>
    public SimulatorFaults Faults { get; }

    /// <summary>What the simulator received.</summary>
    public SimulatorRecorder Requests { get; }

    /// <summary>
    /// Builds and starts a simulator on <paramref name="url"/> (port 0 picks a free port) and returns once it accepts
    /// connections. Bind it to loopback: the simulator has no protection of its own.
    /// </summary>
    public static async Task<SimulatorServer> StartAsync(SimulatorOptions options, string url = "http://127.0.0.1:0", CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(url);

        var app = SimulatorApp.Build(options, [url]);
        try
        {
            await app.StartAsync(ct);
            var address = app.Urls.First();
            return new SimulatorServer(app, new Uri(address.TrimEnd('/') + "/"));
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
    }

    /// <summary>Stops listening; requests in flight (hung or streaming ones included) end at once. Safe to call more than once.</summary>
    public Task StopAsync() => Interlocked.Exchange(ref _stopped, 1) == 0 ? _app.StopAsync() : Task.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        await _app.DisposeAsync();
    }
}
