using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace LlmProxy.IntegrationTests.RateLimiting;

/// <summary>
/// Real redis-server for the rate limit tests. <see cref="SharedConfiguration"/> is the server tests/run.sh starts
/// (<c>LLMPROXY_TEST_REDIS</c>); a test that must stop Redis starts its own with <see cref="StartAsync"/> from
/// <c>LLMPROXY_TEST_REDIS_SERVER</c>. Missing variables fail the test with instructions: these tests never skip.
/// Each test uses its own key prefix, so tests sharing a server do not see each other's counters.
/// </summary>
internal sealed class RedisTestServer : IAsyncDisposable
{
    public const string AddressVariable = "LLMPROXY_TEST_REDIS";
    public const string ServerVariable = "LLMPROXY_TEST_REDIS_SERVER";

    private readonly Process _process;

    private RedisTestServer(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    /// <summary>StackExchange.Redis configuration string of this server.</summary>
    public string Configuration => $"127.0.0.1:{Port}";

    /// <summary>A key prefix of the test's own.</summary>
    public static string NewKeyPrefix() => "llmproxy-test:" + Guid.NewGuid().ToString("N")[..12] + ":";

    public static string SharedConfiguration()
    {
        var address = Environment.GetEnvironmentVariable(AddressVariable);
        if (string.IsNullOrWhiteSpace(address))
        {
            Assert.Fail($"{AddressVariable} is not set. The rate limit tests need a real redis-server: run tests/run.sh, or start one " +
                $"(apt-get install -y redis-server; redis-server --port 6390 --save '' --appendonly no --daemonize yes) and export {AddressVariable}=127.0.0.1:6390 " +
                $"and {ServerVariable}=$(command -v redis-server).");
        }
        return address;
    }

    /// <summary>Starts a redis-server of the test's own on a free loopback port and returns once it accepts connections.</summary>
    public static async Task<RedisTestServer> StartAsync(int? port = null)
    {
        var binary = Environment.GetEnvironmentVariable(ServerVariable);
        if (string.IsNullOrWhiteSpace(binary) || !File.Exists(binary))
        {
            Assert.Fail($"{ServerVariable} must name the redis-server binary (it is '{binary}'). tests/run.sh sets it; locally: " +
                $"apt-get install -y redis-server and export {ServerVariable}=$(command -v redis-server).");
        }
        var chosen = port ?? FreePort();
        var start = new ProcessStartInfo(binary!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "--port", chosen.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "notice" })
        {
            start.ArgumentList.Add(arg);
        }
        var process = Process.Start(start)!;
        var server = new RedisTestServer(process, chosen);
        // redis-server logs this line once it accepts connections.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        try
        {
            while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
            {
                if (line.Contains("Ready to accept connections", StringComparison.Ordinal))
                {
                    _ = DrainAsync(process.StandardOutput);
                    _ = DrainAsync(process.StandardError);
                    return server;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        var error = process.HasExited ? await process.StandardError.ReadToEndAsync() : "";
        await server.DisposeAsync();
        Assert.Fail($"redis-server on port {chosen} did not become ready. {error}");
        return server;
    }

    /// <summary>Kills the server at once, as a crash or a network partition would look to the gateway.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }
    }

    /// <summary>
    /// Freezes the server (SIGSTOP): the kernel still accepts connections, but nothing answers, as with a Redis stuck
    /// in a long command or a black-holed network. <see cref="Resume"/> lets it carry on.
    /// </summary>
    public void Pause() => Signal("STOP");

    public void Resume() => Signal("CONT");

    private void Signal(string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-" + signal, _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))!;
        kill.WaitForExit();
        Assert.Equal(0, kill.ExitCode);
    }

    public ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            Resume(); // a stopped process does not die of SIGKILL any later than a running one, but resume it anyway so nothing lingers stopped
        }
        Kill();
        _process.Dispose();
        return ValueTask.CompletedTask;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task DrainAsync(StreamReader reader)
    {
        try
        {
            while (await reader.ReadLineAsync() is not null)
            {
            }
        }
        catch (ObjectDisposedException)
        {
        }
    }
}
