using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace LlmProxy.IntegrationTests.Caching;

/// <summary>
/// Real redis-server for the cache tests. <see cref="SharedAddress"/> is the server tests/run.sh starts
/// (<c>LLMPROXY_TEST_REDIS</c>); <see cref="StartOwnAsync"/> starts a private one (binary from
/// <c>LLMPROXY_TEST_REDIS_SERVER</c>) that a test may pause, kill and restart on the same port. A missing
/// variable or binary fails the test with instructions: CI always provides them, and a skipped Redis test
/// would hide a broken store.
/// </summary>
internal sealed class RedisTestServer : IAsyncDisposable
{
    public const string AddressVariable = "LLMPROXY_TEST_REDIS";
    public const string ServerVariable = "LLMPROXY_TEST_REDIS_SERVER";

    private Process? _process;

    private RedisTestServer(string executable, int port)
    {
        Executable = executable;
        Port = port;
    }

    public string Executable { get; }
    public int Port { get; }
    public string Address => "127.0.0.1:" + Port;

    /// <summary>host:port of the shared test Redis.</summary>
    public static string SharedAddress
    {
        get
        {
            var address = Environment.GetEnvironmentVariable(AddressVariable);
            if (string.IsNullOrWhiteSpace(address))
            {
                Assert.Fail($"{AddressVariable} is not set. Run the tests with tests/run.sh (it starts redis-server), or start one yourself " +
                    $"(apt-get install -y redis-server; redis-server --port 6390 --save '' --appendonly no --daemonize yes) and export {AddressVariable}=127.0.0.1:6390.");
            }
            return address;
        }
    }

    public static async Task<RedisTestServer> StartOwnAsync()
    {
        var executable = Environment.GetEnvironmentVariable(ServerVariable);
        if (string.IsNullOrWhiteSpace(executable) || !File.Exists(executable))
        {
            Assert.Fail($"{ServerVariable} must name the redis-server binary (it is '{executable}'). Run the tests with tests/run.sh, " +
                $"or apt-get install -y redis-server and export {ServerVariable}=$(command -v redis-server).");
        }
        var server = new RedisTestServer(executable, FreePort());
        await server.StartAsync();
        return server;
    }

    public async Task StartAsync()
    {
        if (_process is { HasExited: false })
        {
            return;
        }
        var start = new ProcessStartInfo(Executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1",
                     "--save", "", "--appendonly", "no" })
        {
            start.ArgumentList.Add(argument);
        }
        _process = Process.Start(start) ?? throw new InvalidOperationException("redis-server did not start");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline && !_process.HasExited)
            {
                await Task.Delay(50);
            }
        }
    }

    /// <summary>Kills the server (its clients see the connection drop).</summary>
    public async Task KillAsync()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill();
            await process.WaitForExitAsync();
        }
        _process?.Dispose();
        _process = null;
    }

    /// <summary>SIGSTOP: the server keeps its connections open but answers nothing, so every operation times out.</summary>
    public Task PauseAsync() => SignalAsync("-STOP");

    public Task ResumeAsync() => SignalAsync("-CONT");

    private async Task SignalAsync(string signal)
    {
        var pid = _process?.Id ?? throw new InvalidOperationException("redis-server is not running");
        using var kill = Process.Start("kill", [signal, pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            await ResumeAsync();
        }
        await KillAsync();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
