using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace LlmProxy.Benchmarks.Overhead;

/// <summary>
/// The servers a benchmark starts. Each one's output goes to a log file in the work directory (shown when it fails
/// to start); all of them are killed, with their children, when the set is disposed, whatever happened before.
/// </summary>
internal sealed class ChildProcesses(string logDirectory) : IDisposable
{
    private readonly List<(string Name, Process Process)> _started = [];

    public Process Start(string name, string file, IEnumerable<string> arguments, IDictionary<string, string>? environment = null, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo(file, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory ?? "",
        };
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }
        var log = new StreamWriter(Path.Combine(logDirectory, name + ".log")) { AutoFlush = true };
        var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {file}");
        process.OutputDataReceived += (_, e) => Write(log, e.Data);
        process.ErrorDataReceived += (_, e) => Write(log, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        lock (_started)
        {
            _started.Add((name, process));
        }
        return process;
    }

    private static void Write(StreamWriter log, string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (log)
        {
            log.WriteLine(line);
        }
    }

    public string LogOf(string name)
    {
        var path = Path.Combine(logDirectory, name + ".log");
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            var text = new StreamReader(stream).ReadToEnd();
            return text.Length > 4000 ? text[^4000..] : text;
        }
        catch (IOException)
        {
            return "";
        }
    }

    public void Stop(Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
        }
    }

    public void Dispose()
    {
        lock (_started)
        {
            foreach (var (_, process) in _started)
            {
                Stop(process);
                process.Dispose();
            }
            _started.Clear();
        }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static async Task WaitForPortAsync(Process process, int port, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < timeout)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (process.HasExited)
            {
                throw new InvalidOperationException($"the process exited with code {process.ExitCode} before listening on port {port}");
            }
            try
            {
                using var socket = new TcpClient();
                await socket.ConnectAsync(IPAddress.Loopback, port, cancellationToken);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(100, cancellationToken);
            }
        }
        throw new TimeoutException($"nothing listens on port {port} after {timeout.TotalSeconds:F0} s");
    }

    /// <summary>A line of <c>/proc/&lt;pid&gt;/status</c> in MB: <c>VmRSS</c> (resident now) or <c>VmHWM</c> (the peak so far).</summary>
    public static double MemoryMegabytes(Process process, string field)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{process.Id}/status"))
            {
                if (line.StartsWith(field + ":", StringComparison.Ordinal))
                {
                    return double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024;
                }
            }
        }
        catch (IOException)
        {
        }
        return double.NaN;
    }
}
