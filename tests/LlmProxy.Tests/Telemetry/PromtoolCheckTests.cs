using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using Xunit;

namespace LlmProxy.Tests.Telemetry;

/// <summary>
/// Validates real scrapes with Prometheus's own parser and linter through promtool-check.sh. These tests skip when
/// promtool is not installed (apt-get install prometheus); the script itself fails loudly in that case, so CI,
/// which runs the script on a live gateway scrape, cannot pass without it.
/// </summary>
public sealed class PromtoolCheckTests
{
    private static readonly string Script = Path.Combine(SourceDirectory(), "promtool-check.sh");

    [Fact]
    public async Task PromtoolCheck_ScrapeWithEveryGatewayMetric_PassesWithoutErrorsOrLintWarnings()
    {
        SkipWithoutPromtool();
        using var services = new TelemetryServices(new Dictionary<string, string?> { ["LlmProxy:Metrics:MaxSeriesPerMetric"] = "5" });
        GatewayMetricsExercise.RecordEverything(services);
        // Push one metric past its label-set limit so the overflow series is checked too.
        for (var i = 0; i < 10; i++)
        {
            services.Metrics.RecordRateLimitRejection("tenant-" + i, "tokens");
        }
        // An instrument with odd values: empty label, NaN and infinite gauge values, a huge counter.
        var meter = services.MeterFactory.Create("LlmProxy.PromtoolCheck");
        meter.CreateObservableGauge("llmproxy.test.odd_values", () => new[]
        {
            new Measurement<double>(double.NaN, new KeyValuePair<string, object?>("case", "nan")),
            new Measurement<double>(double.PositiveInfinity, new KeyValuePair<string, object?>("case", "inf")),
            new Measurement<double>(1e-9, new KeyValuePair<string, object?>("case", "")),
        }, "{value}", "Odd values.");
        meter.CreateCounter<long>("llmproxy.test.big", "{x}", "Big.").Add(long.MaxValue / 2);

        var (exitCode, output) = await RunScriptAsync(services.ScrapeText());

        Assert.True(exitCode == 0, $"promtool-check.sh exited {exitCode}:\n{output}");
        Assert.Contains("promtool-check: OK", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("# HELP a_total A.\n# TYPE a_total counter\na_total 1\na_total 2\n", "more than once")]
    [InlineData("# TYPE no_help gauge\nno_help 1\n", "no help text")]
    [InlineData("# HELP bad Bad.\n# TYPE bad gauge\nbad{l=\"unterminated} 1\n", "exited 1")]
    public async Task PromtoolCheck_InvalidOrUnlintedScrape_Fails(string scrape, string expected)
    {
        SkipWithoutPromtool();

        var (exitCode, output) = await RunScriptAsync(scrape);

        Assert.NotEqual(0, exitCode);
        Assert.Contains(expected, output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PromtoolCheck_PromtoolNotOnPath_FailsLoudly()
    {
        Assert.SkipUnless(File.Exists("/bin/bash"), "needs bash");

        var (exitCode, output) = await RunScriptAsync("# HELP a A.\n# TYPE a gauge\na 1\n", path: "/nonexistent");

        Assert.Equal(127, exitCode);
        Assert.Contains("promtool is not installed", output, StringComparison.Ordinal);
    }

    private static void SkipWithoutPromtool()
    {
        var found = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Any(dir => dir.Length > 0 && File.Exists(Path.Combine(dir, "promtool")));
        Assert.SkipUnless(found, "promtool is not installed (apt-get update && apt-get install -y prometheus); promtool-check.sh is not exercised.");
    }

    private static async Task<(int ExitCode, string Output)> RunScriptAsync(string scrape, string? path = null)
    {
        Assert.True(File.Exists(Script), $"Script not found at {Script}");
        var file = Path.Combine(Path.GetTempPath(), $"llmproxy-scrape-{Guid.NewGuid():N}.txt");
        await File.WriteAllTextAsync(file, scrape, TestContext.Current.CancellationToken);
        try
        {
            var start = new ProcessStartInfo("/bin/bash")
            {
                ArgumentList = { Script, file },
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            if (path is not null)
            {
                start.Environment["PATH"] = path;
            }
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
            var stderr = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
            await process.WaitForExitAsync(TestContext.Current.CancellationToken);
            return (process.ExitCode, await stdout + await stderr);
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static string SourceDirectory([CallerFilePath] string path = "") => Path.GetDirectoryName(path)!;
}
