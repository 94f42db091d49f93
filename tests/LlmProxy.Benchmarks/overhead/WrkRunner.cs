using System.Diagnostics;
using System.Globalization;

namespace LlmProxy.Benchmarks.Overhead;

/// <summary>What one wrk run reported (parsed from the lines chat.lua's done() prints).</summary>
internal sealed record WrkResult(long Requests, TimeSpan Duration, long Errors, LatencyHistogram Latency)
{
    public double RequestsPerSecond => Requests / Duration.TotalSeconds;
}

/// <summary>
/// Runs wrk, the load generator of the non-streamed targets: one closed-loop client per connection on a fixed
/// number of connections for a fixed time, the body built by chat.lua. wrk is C and epoll, so on a small machine it
/// leaves more of the CPU to the target than an HTTP client in .NET would.
/// </summary>
internal sealed class WrkRunner(string script, int threads)
{
    public async Task<WrkResult> RunAsync(string url, int connections, TimeSpan duration, string model, string mode, IReadOnlyList<string> headers,
        CancellationToken cancellationToken)
    {
        var arguments = new List<string>
        {
            $"-t{Math.Min(threads, connections)}", $"-c{connections}", $"-d{Math.Max(1, (int)duration.TotalSeconds)}s", "--timeout", "10s",
            "-s", script, url, "--", model, mode, $"{Environment.TickCount64}",
        };
        arguments.AddRange(headers);
        var start = new ProcessStartInfo("wrk", arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start wrk");
        await using var _ = cancellationToken.Register(() => { try { process.Kill(); } catch (InvalidOperationException) { } });
        var outputTask = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var errorTask = process.StandardError.ReadToEndAsync(CancellationToken.None);
        await process.WaitForExitAsync(CancellationToken.None);
        cancellationToken.ThrowIfCancellationRequested();
        var output = await outputTask;
        var histogram = new LatencyHistogram();
        long requests = -1, durationUs = 0, errors = 0;
        foreach (var line in output.Split('\n'))
        {
            if (line.StartsWith("LAT ", StringComparison.Ordinal))
            {
                var parts = line.Split(' ');
                histogram.Add((long)double.Parse(parts[1], CultureInfo.InvariantCulture), (long)double.Parse(parts[2], CultureInfo.InvariantCulture));
            }
            else if (line.StartsWith("RESULT ", StringComparison.Ordinal))
            {
                foreach (var pair in line[7..].Split(' ', StringSplitOptions.RemoveEmptyEntries))
                {
                    var (key, value) = (pair[..pair.IndexOf('=')], long.Parse(pair[(pair.IndexOf('=') + 1)..], CultureInfo.InvariantCulture));
                    switch (key)
                    {
                        case "requests": requests = value; break;
                        case "duration_us": durationUs = value; break;
                        default: errors += value; break;
                    }
                }
            }
        }
        if (requests < 0)
        {
            throw new InvalidOperationException($"wrk printed no result (exit {process.ExitCode}): {await errorTask}{output}");
        }
        return new WrkResult(requests, TimeSpan.FromMicroseconds(durationUs), errors, histogram);
    }
}
