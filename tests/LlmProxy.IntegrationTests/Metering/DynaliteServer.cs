using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace LlmProxy.IntegrationTests.Metering;

/// <summary>
/// A dynalite (DynamoDB-compatible) server of the test's own, on a free loopback port. Found through
/// <c>LLMPROXY_TEST_DYNALITE</c> (the package directory, exported by tests/scripts/services.sh). With
/// <c>persistent</c>, its data lives in a directory so that the server can be killed and restarted without losing it.
/// </summary>
internal sealed class DynaliteServer : IAsyncDisposable
{
    public const string Variable = "LLMPROXY_TEST_DYNALITE";

    private readonly string _cli;
    private readonly string? _dataDirectory;
    private Process? _process;

    private DynaliteServer(string cli, int port, string? dataDirectory)
    {
        _cli = cli;
        Port = port;
        _dataDirectory = dataDirectory;
    }

    public int Port { get; }

    public Uri ServiceUrl => new($"http://127.0.0.1:{Port}");

    public static async Task<DynaliteServer> StartAsync(bool persistent = false)
    {
        var location = Environment.GetEnvironmentVariable(Variable);
        if (string.IsNullOrWhiteSpace(location))
        {
            throw new InvalidOperationException(
                $"{Variable} is not set, so there is no dynalite to test the DynamoDB usage store against. Run the tests with tests/run.sh, " +
                "or: source tests/scripts/services.sh && start_dynalite (installs it with npm into tests/scripts/node_modules and exports the variable).");
        }
        var cli = File.Exists(location) ? location : Path.Combine(location, "cli.js");
        if (!File.Exists(cli))
        {
            throw new InvalidOperationException($"{Variable}={location}, but there is no dynalite cli.js there. Reinstall with tests/scripts/services.sh (start_dynalite).");
        }
        var dataDirectory = persistent ? Directory.CreateTempSubdirectory("llmproxy-dynalite-").FullName : null;
        var server = new DynaliteServer(cli, FreePort(), dataDirectory);
        await server.RunAsync();
        return server;
    }

    /// <summary>Kills the server abruptly (SIGKILL), as a crash or a network cut would look to the gateway.</summary>
    public void Kill()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(10_000);
        }
        _process?.Dispose();
        _process = null;
    }

    /// <summary>Starts the server again on the same port (and data directory).</summary>
    public Task RestartAsync()
    {
        Kill();
        return RunAsync();
    }

    private async Task RunAsync()
    {
        var start = new ProcessStartInfo("node")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { _cli, "--host", "127.0.0.1", "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     "--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0" })
        {
            start.ArgumentList.Add(argument);
        }
        if (_dataDirectory is not null)
        {
            start.ArgumentList.Add("--path");
            start.ArgumentList.Add(_dataDirectory);
        }
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start node");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;

        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException) when (deadline.Elapsed < TimeSpan.FromSeconds(20) && !process.HasExited)
            {
                await Task.Delay(50);
            }
            catch (SocketException ex)
            {
                Kill();
                throw new InvalidOperationException($"dynalite did not start on port {Port} (exited: {process.HasExited}).", ex);
            }
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public ValueTask DisposeAsync()
    {
        Kill();
        if (_dataDirectory is not null)
        {
            try
            {
                Directory.Delete(_dataDirectory, recursive: true);
            }
            catch (IOException)
            {
            }
        }
        return ValueTask.CompletedTask;
    }
}
