using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace LlmProxy.Benchmarks.Micro;

/// <summary>
/// BenchmarkDotNet over the gateway's per-request hot paths, with allocations per operation (MemoryDiagnoser).
/// Runs in process (no generated project to build) with the short job: a quick read of time and bytes, not a
/// publication-grade figure. Other BenchmarkDotNet arguments pass through (<c>--job medium --inProcess</c>, <c>--filter</c>).
/// </summary>
internal static class MicroBenchmarks
{
    public static int Run(string[] args)
    {
        // Reports go under bin/, not into whatever directory the command was started from.
        var config = DefaultConfig.Instance
            .WithOptions(ConfigOptions.DisableOptimizationsValidator)
            .WithArtifactsPath(Path.Combine(AppContext.BaseDirectory, "BenchmarkDotNet.Artifacts"));
        if (!args.Any(a => a is "--job" or "-j"))
        {
            config = config.AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance));
        }
        if (!args.Any(a => a is "--filter" or "-f" or "--list"))
        {
            args = [.. args, "--filter", "*"]; // all of them, rather than an interactive prompt
        }
        BenchmarkSwitcher.FromAssembly(typeof(MicroBenchmarks).Assembly).Run(args, config);
        return 0;
    }
}
