using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.RegularExpressions;
using LlmProxy.IntegrationTests.Infrastructure;

namespace LlmProxy.IntegrationTests.Providers;

/// <summary>
/// The gateway as a real child process (<c>dotnet LlmProxy.dll</c>), configured through environment variables the way
/// a container is. Needed where the gateway reads process-wide state once, like the AWS default credential chain: each
/// test gets a process with exactly the AWS environment it sets up, and nothing of the machine's (no <c>AWS_*</c>
/// variables, a private <c>HOME</c> so no <c>~/.aws</c>, no instance metadata service).
/// </summary>
internal sealed partial class GatewayProcess : IAsyncDisposable
{
    private static readonly TimeSpan StartupTimeout = TimeSpan.FromSeconds(60);
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output;

    private GatewayProcess(Process process, ConcurrentQueue<string> output, Uri baseAddress)
    {
        _process = process;
        _output = output;
        BaseAddress = baseAddress;
    }

    public Uri BaseAddress { get; }

    /// <summary>Everything the process wrote to stdout and stderr so far (its console log).</summary>
    public string Output => string.Join('\n', _output);

    /// <param name="settings">The gateway configuration, passed as <c>LlmProxy__...</c> environment variables.</param>
    /// <param name="directory">A private directory: working directory, <c>HOME</c>, usage ledger.</param>
    /// <param name="environment">Further variables, e.g. the AWS ones under test.</param>
    public static async Task<GatewayProcess> StartAsync(GatewaySettings settings, DirectoryInfo directory, IReadOnlyDictionary<string, string> environment)
    {
        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "LlmProxy.dll"), "--urls", "http://127.0.0.1:0"])
        {
            WorkingDirectory = directory.FullName,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        var inherited = start.Environment;
        foreach (var name in inherited.Keys.ToArray())
        {
            if (name.StartsWith("AWS_", StringComparison.OrdinalIgnoreCase) || name.StartsWith("LLMPROXY", StringComparison.OrdinalIgnoreCase))
            {
                inherited.Remove(name);
            }
        }
        inherited["HOME"] = directory.FullName;
        // No profile files unless a test writes one, and never a wait on an instance metadata service that is not there.
        inherited["AWS_CONFIG_FILE"] = Path.Combine(directory.FullName, "no-aws-config");
        inherited["AWS_SHARED_CREDENTIALS_FILE"] = Path.Combine(directory.FullName, "no-aws-credentials");
        inherited["AWS_EC2_METADATA_DISABLED"] = "true";
        inherited["LlmProxy__Metering__DataDirectory"] = Path.Combine(directory.FullName, "data");
        foreach (var (key, value) in settings.Values)
        {
            inherited[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        }
        foreach (var (name, value) in environment)
        {
            inherited[name] = value;
        }

        var output = new ConcurrentQueue<string>();
        var listening = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.Exited += (_, _) => listening.TrySetException(new InvalidOperationException("The gateway process exited during startup."));
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        try
        {
            return new GatewayProcess(process, output, await listening.Task.WaitAsync(StartupTimeout));
        }
        catch (Exception ex) when (ex is TimeoutException or InvalidOperationException)
        {
            await StopAsync(process);
            throw new InvalidOperationException($"The gateway did not start: {ex.Message}\n{string.Join('\n', output)}", ex);
        }

        void OnLine(string? line)
        {
            if (line is null)
            {
                return;
            }
            output.Enqueue(line);
            if (ListeningOn().Match(line) is { Success: true } match)
            {
                listening.TrySetResult(new Uri(match.Groups[1].Value));
            }
        }
    }

    public HttpClient CreateClient(string apiKey)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", apiKey);
        return client;
    }

    public ValueTask DisposeAsync() => new(StopAsync(_process));

    private static async Task StopAsync(Process process)
    {
        if (!process.HasExited)
        {
            // Only this process, started here, by its own handle.
            process.Kill(entireProcessTree: true);
        }
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(timeout.Token);
        process.Dispose();
    }

    [GeneratedRegex(@"Now listening on: (http://\S+)")]
    private static partial Regex ListeningOn();
}
