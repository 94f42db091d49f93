using LlmProxy.Benchmarks;
using LlmProxy.Benchmarks.Overhead;

// Benchmarks print figures; they are never pass/fail tests. Run: bash tests/LlmProxy.Benchmarks/run.sh <name>
// (the overhead benchmark: bash tests/LlmProxy.Benchmarks/overhead/run.sh). See tests/LlmProxy.Benchmarks/README.md.
var name = args.Length > 0 ? args[0] : "help";
return name switch
{
    "failover" => await FailoverBenchmark.RunAsync(args[1..]),
    "soak" => await SoakTest.RunAsync(args[1..]),
    "overhead" => await OverheadBenchmark.RunAsync(args[1..]),
    "yarp" => await BareYarpHost.RunAsync(args[1..]),
    "micro" => LlmProxy.Benchmarks.Micro.MicroBenchmarks.Run(args[1..]),
    _ => Usage(),
};

static int Usage()
{
    Console.WriteLine("usage: LlmProxy.Benchmarks failover [--requests N] [--rounds N]");
    Console.WriteLine("       LlmProxy.Benchmarks soak [--minutes M] [--concurrency N]   (needs redis-server, node + dynalite, a Release build)");
    Console.WriteLine("       LlmProxy.Benchmarks overhead [--duration 6s] [--connections 32] [--rounds 2] ...   (use overhead/run.sh: it installs wrk and Portkey)");
    Console.WriteLine("       LlmProxy.Benchmarks yarp --urls URL --upstream URL   (the bare YARP target of the overhead benchmark)");
    Console.WriteLine("       LlmProxy.Benchmarks micro [BenchmarkDotNet arguments, e.g. --filter '*Parse*']   (hot-path microbenchmarks, allocations)");
    return 2;
}
