using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;

namespace LlmProxy.IntegrationTests.Infrastructure;

/// <summary>
/// The published gateway run as its own child process (<c>dotnet LlmProxy.dll</c>, what a container runs), configured
/// only through its working directory and environment, with its console log captured. For what an in-process
/// <see cref="GatewayHost"/> cannot show: process-wide state read once (the AWS credential chain), signals, the
/// console log format, the exit code, replicas that share no runtime.
/// </summary>
internal sealed partial class GatewayProcess : IAsyncDisposable
{
    private static readonly TimeSpan StartupTimeout = TimeSpan.FromSeconds(60);
    private readonly Process _process;
    private readonly ConcurrentQueue<(string Line, bool StandardError)> _output = new();
    private readonly TaskCompletionSource<Uri> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Uri? _baseAddress;
    private bool _disposed;

    private GatewayProcess(Process process, Uri? baseAddress)
    {
        _process = process;
        _baseAddress = baseAddress;
    }

    /// <summary>
    /// Where the gateway listens: the fixed port it was started on, or the one Kestrel chose, read from its
    /// "Now listening on:" log line by <see cref="WaitUntilListeningAsync"/>.
    /// </summary>
    public Uri BaseAddress => _baseAddress ?? throw new InvalidOperationException("The gateway has not logged its address yet.");

    /// <summary>Every line the process wrote to stdout and stderr so far, in the order they arrived.</summary>
    public IReadOnlyList<string> Lines => _output.Select(o => o.Line).ToArray();

    /// <summary>The lines the process wrote to stdout only (where the console logger writes).</summary>
    public IReadOnlyList<string> StandardOutputLines => _output.Where(o => !o.StandardError).Select(o => o.Line).ToArray();

    /// <summary>Everything the process wrote so far as one text, for assertions and failure messages.</summary>
    public string Output => string.Join('\n', Lines);

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>Starts the process without waiting for anything: for a gateway expected to exit, or on a fixed port.</summary>
    /// <param name="workingDirectory">Its working directory (where it looks for appsettings.json and config/llmproxy.json).</param>
    /// <param name="environment">Variables to set on top of the inherited ones; a null value removes an inherited variable.</param>
    /// <param name="port">The loopback port to listen on; 0 lets Kestrel choose (see <see cref="WaitUntilListeningAsync"/>).</param>
    /// <param name="withoutInheritedAwsOrLlmProxyVariables">
    /// Drop every inherited <c>AWS_*</c> and <c>LLMPROXY*</c> variable first, so the process sees only the ones the test sets.
    /// </param>
    /// <param name="urls">
    /// Every address to listen on (<c>;</c>-separated), instead of the one of <paramref name="port"/>; the first is
    /// <see cref="BaseAddress"/>.
    /// </param>
    public static GatewayProcess Start(string workingDirectory, IReadOnlyDictionary<string, string?> environment, int port = 0,
        bool withoutInheritedAwsOrLlmProxyVariables = false, string? urls = null)
    {
        urls ??= $"http://127.0.0.1:{port}";
        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "LlmProxy.dll"), "--urls", urls])
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (withoutInheritedAwsOrLlmProxyVariables)
        {
            foreach (var name in start.Environment.Keys.ToArray())
            {
                if (name.StartsWith("AWS_", StringComparison.OrdinalIgnoreCase) || name.StartsWith("LLMPROXY", StringComparison.OrdinalIgnoreCase))
                {
                    start.Environment.Remove(name);
                }
            }
        }
        foreach (var (name, value) in environment)
        {
            if (value is null)
            {
                start.Environment.Remove(name);
            }
            else
            {
                start.Environment[name] = value;
            }
        }

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var first = new Uri(urls.Split(';')[0]);
        var gateway = new GatewayProcess(process, first.Port == 0 ? null : new Uri(first, "/"));
        process.OutputDataReceived += (_, e) => gateway.Receive(e.Data, standardError: false);
        process.ErrorDataReceived += (_, e) => gateway.Receive(e.Data, standardError: true);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return gateway;
    }

    /// <summary>Starts the process on a port Kestrel chooses and returns once the gateway has logged it.</summary>
    public static async Task<GatewayProcess> StartAsync(string workingDirectory, IReadOnlyDictionary<string, string?> environment,
        bool withoutInheritedAwsOrLlmProxyVariables = false, TimeSpan? startupTimeout = null)
    {
        var gateway = Start(workingDirectory, environment, port: 0, withoutInheritedAwsOrLlmProxyVariables);
        try
        {
            await gateway.WaitUntilListeningAsync(startupTimeout);
            return gateway;
        }
        catch
        {
            await gateway.DisposeAsync();
            throw;
        }
    }

    /// <summary>Waits for the "Now listening on:" line and takes the address from it.</summary>
    public async Task<Uri> WaitUntilListeningAsync(TimeSpan? within = null)
    {
        var timeout = within ?? StartupTimeout;
        var exited = _process.WaitForExitAsync();
        var first = await Task.WhenAny(_listening.Task, exited, Task.Delay(timeout));
        if (first == _listening.Task)
        {
            return _baseAddress = await _listening.Task;
        }
        throw new InvalidOperationException((first == exited
            ? $"The gateway process exited during startup (exit code {_process.ExitCode})."
            : $"The gateway did not log its address within {timeout.TotalSeconds} s.") + " Its output:\n" + Output);
    }

    /// <summary>
    /// Polls <paramref name="path"/> until it answers with a success status, as a load balancer would: listening is
    /// not the same as ready (configuration loaded, a first Redis round trip made).
    /// </summary>
    public async Task WaitUntilAnswersAsync(string path, TimeSpan within)
    {
        using var http = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(10) };
        var deadline = Stopwatch.StartNew();
        var last = "";
        while (deadline.Elapsed < within)
        {
            if (HasExited)
            {
                throw new InvalidOperationException($"The gateway process exited (exit code {ExitCode}). Its output:\n{Output}");
            }
            try
            {
                using var response = await http.GetAsync(path);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
                last = $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}";
            }
            catch (HttpRequestException ex)
            {
                // Not listening yet.
                last = ex.Message;
            }
            catch (TaskCanceledException)
            {
                last = "no answer within 10 s";
            }
            await Task.Delay(100);
        }
        throw new InvalidOperationException($"The gateway did not answer {path} within {within.TotalSeconds} s: {last}. Its output:\n{Output}");
    }

    /// <summary>The first line (of stdout or stderr) that matches, waiting for it while the process runs.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan? within = null)
    {
        var timeout = within ?? StartupTimeout;
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (Lines.FirstOrDefault(match) is { } line)
            {
                return line;
            }
            if (HasExited)
            {
                throw new InvalidOperationException("The gateway process exited. Its output:\n" + Output);
            }
            if (deadline.Elapsed >= timeout)
            {
                throw new TimeoutException($"No such log line within {timeout.TotalSeconds} s. The output:\n{Output}");
            }
            await Task.Delay(20);
        }
    }

    /// <summary>Waits for the process to end on its own; afterwards <see cref="Lines"/> holds all it wrote.</summary>
    public async Task WaitForExitAsync(TimeSpan within)
    {
        using var timeout = new CancellationTokenSource(within);
        await _process.WaitForExitAsync(timeout.Token);
    }

    /// <summary>Sends a signal (e.g. <c>HUP</c>) to this process only, by its id.</summary>
    public void Signal(string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, _process.Id.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        Assert.Equal(0, kill.ExitCode);
    }

    public HttpClient CreateClient(string? apiKey = null)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        if (apiKey is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        }
        return client;
    }

    /// <summary>Kills the process (with its children) if it still runs and waits until it is gone and its output read.</summary>
    public async Task StopAsync()
    {
        if (!_process.HasExited)
        {
            // Only this process, started here, by its own handle.
            _process.Kill(entireProcessTree: true);
        }
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await _process.WaitForExitAsync(timeout.Token);
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        try
        {
            await StopAsync();
        }
        finally
        {
            _process.Dispose();
        }
    }

    private void Receive(string? line, bool standardError)
    {
        if (line is null)
        {
            return;
        }
        _output.Enqueue((line, standardError));
        // The simple console format prints the address at the end of the line; the JSON one inside a string.
        if (ListeningOn().Match(line) is { Success: true } match)
        {
            _listening.TrySetResult(new Uri(match.Groups[1].Value));
        }
    }

    [GeneratedRegex(@"Now listening on: (http://[^\s""]+)")]
    private static partial Regex ListeningOn();
}
