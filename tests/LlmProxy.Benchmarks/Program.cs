using LlmProxy.Benchmarks;

// Benchmarks print figures; they are never pass/fail tests. Run: bash tests/LlmProxy.Benchmarks/run.sh <name>
var name = args.Length > 0 ? args[0] : "help";
return name switch
{
    "failover" => await FailoverBenchmark.RunAsync(args[1..]),
    "soak" => await SoakTest.RunAsync(args[1..]),
    _ => Usage(),
};

static int Usage()
{
    Console.WriteLine("usage: LlmProxy.Benchmarks failover [--requests N] [--rounds N]");
    Console.WriteLine("       LlmProxy.Benchmarks soak [--minutes M] [--concurrency N]   (needs redis-server, node + dynalite, a Release build)");
    return 2;
}
