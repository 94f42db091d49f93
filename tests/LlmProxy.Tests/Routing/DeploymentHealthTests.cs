using LlmProxy.Configuration;
using LlmProxy.OpenAi;
using LlmProxy.Providers;
using LlmProxy.Providers.OpenAi;
using LlmProxy.Routing;
using LlmProxy.Tenancy;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace LlmProxy.Tests.Routing;

public sealed class DeploymentHealthTests
{
    private readonly FakeTimeProvider _time = new();

    private (DeploymentHealthRegistry Registry, GatewayConfiguration Config) Create(Action<DeploymentOptions>? configure = null, bool providerDefaults = false)
    {
        var deployment = RoutingTestConfiguration.OpenAi();
        if (!providerDefaults)
        {
            deployment.Breaker.ConsecutiveFailures = 3;
            deployment.Breaker.BreakDuration = TimeSpan.FromSeconds(30);
        }
        configure?.Invoke(deployment);
        var configuration = new RoutingTestConfiguration(_time, ("d", deployment));
        return (configuration.Registry, configuration.Provider.Current);
    }

    private static AttemptResult Failure(int status = 502, TimeSpan? retryAfter = null) => new(AttemptDisposition.Failed,
        new UpstreamFailure(status, new OpenAiError("x", "upstream_error", null, null), IsRetryable: true, "status") { RetryAfter = retryAfter }, TimeSpan.FromMilliseconds(5));

    private static readonly AttemptResult Success = new(AttemptDisposition.Served, null, TimeSpan.FromMilliseconds(10));

    private static void Run(DeploymentHealth health, AttemptResult result)
    {
        Assert.True(health.TryEnter(out var probe));
        health.Exit(probe, result);
    }

    [Fact]
    public void ConsecutiveFailures_ReachThreshold_OpenTheBreaker()
    {
        var (registry, config) = Create();
        var health = registry.Get(config.Deployments["d"]);

        Run(health, Failure());
        Run(health, Failure());
        Assert.Equal(BreakerState.Closed, health.State);
        Run(health, Failure());

        Assert.Equal(BreakerState.Open, health.State);
        Assert.False(health.TryEnter(out _));
        Assert.Equal(_time.GetUtcNow() + TimeSpan.FromSeconds(30), health.AvailableAt);
    }

    [Fact]
    public void ConsecutiveFailures_OpenAiDefaults_FiveFailuresOpenItForThirtySeconds()
    {
        var (registry, config) = Create(providerDefaults: true);
        var health = registry.Get(config.Deployments["d"]);

        for (var i = 0; i < 4; i++)
        {
            Run(health, Failure());
        }
        Assert.Equal(BreakerState.Closed, health.State);
        Run(health, Failure());

        Assert.Equal(BreakerState.Open, health.State);
        Assert.Equal(_time.GetUtcNow() + TimeSpan.FromSeconds(30), health.AvailableAt);
        _time.Advance(TimeSpan.FromSeconds(30) - TimeSpan.FromMilliseconds(1));
        Assert.False(health.TryEnter(out _));
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(BreakerState.HalfOpen, health.State);
    }

    [Fact]
    public void ConsecutiveFailures_InterruptedBySuccess_DoNotOpen()
    {
        var (registry, config) = Create();
        var health = registry.Get(config.Deployments["d"]);

        Run(health, Failure());
        Run(health, Failure());
        Run(health, Success);
        Run(health, Failure());
        Run(health, Failure());

        Assert.Equal(BreakerState.Closed, health.State);
    }

    [Fact]
    public void OpenBreaker_AfterBreak_LetsExactlyOneProbeThrough()
    {
        var (registry, config) = Create();
        var health = registry.Get(config.Deployments["d"]);
        for (var i = 0; i < 3; i++)
        {
            Run(health, Failure());
        }

        _time.Advance(TimeSpan.FromSeconds(29));
        Assert.False(health.TryEnter(out _));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(BreakerState.HalfOpen, health.State);

        Assert.True(health.TryEnter(out var firstIsProbe));
        Assert.True(firstIsProbe);
        Assert.False(health.TryEnter(out _));
        Assert.False(health.TryEnter(out _));

        health.Exit(firstIsProbe, Success);
        Assert.Equal(BreakerState.Closed, health.State);
        Assert.True(health.TryEnter(out var next));
        Assert.False(next);
    }

    [Fact]
    public void FailedProbe_ReopensForAnotherBreak()
    {
        var (registry, config) = Create();
        var health = registry.Get(config.Deployments["d"]);
        for (var i = 0; i < 3; i++)
        {
            Run(health, Failure());
        }
        _time.Advance(TimeSpan.FromSeconds(30));

        Run(health, Failure());

        Assert.Equal(BreakerState.Open, health.State);
        _time.Advance(TimeSpan.FromSeconds(29));
        Assert.False(health.TryEnter(out _));
    }

    [Fact]
    public void RateLimitedWithRetryAfter_CoolsDownForThatLong()
    {
        var (registry, config) = Create();
        var health = registry.Get(config.Deployments["d"]);

        Run(health, Failure(429, TimeSpan.FromSeconds(12)));

        Assert.Equal(BreakerState.Open, health.State);
        Assert.Equal(_time.GetUtcNow() + TimeSpan.FromSeconds(12), health.AvailableAt);
        _time.Advance(TimeSpan.FromSeconds(12));
        Assert.Equal(BreakerState.Closed, health.State);
        Assert.True(health.TryEnter(out _));
    }

    [Fact]
    public void ClientErrorsAndCancellations_DoNotCountAgainstTheDeployment()
    {
        var (registry, config) = Create();
        var health = registry.Get(config.Deployments["d"]);
        var clientError = new AttemptResult(AttemptDisposition.Failed,
            new UpstreamFailure(400, new OpenAiError("bad", "invalid_request_error", null, null), IsRetryable: false, "status_400"), TimeSpan.Zero);

        for (var i = 0; i < 10; i++)
        {
            Run(health, clientError);
            Run(health, new AttemptResult(AttemptDisposition.Cancelled, null, TimeSpan.Zero));
        }

        Assert.Equal(BreakerState.Closed, health.State);
        Assert.Equal(0, health.Snapshot().Failures);
    }

    [Fact]
    public async Task DrainAndRecover_OverrideTheBreaker()
    {
        var (registry, config) = Create();
        var health = registry.Get(config.Deployments["d"]);

        await health.DrainAsync();
        Assert.Equal("drained", health.Snapshot().State);
        Assert.False(health.TryEnter(out _));
        _time.Advance(TimeSpan.FromHours(1));
        Assert.False(health.TryEnter(out _));

        await health.RecoverAsync();
        Assert.Equal("closed", health.Snapshot().State);
        Assert.True(health.TryEnter(out _));
    }

    [Fact]
    public async Task PollyRatioBreaker_OpensOnFailureRatioOverMinimumThroughput()
    {
        var (registry, config) = Create(d =>
        {
            d.Breaker.ConsecutiveFailures = 1000;
            d.Breaker.FailureRatio = 0.5;
            d.Breaker.MinimumThroughput = 10;
        });
        var health = registry.Get(config.Deployments["d"]);

        // Alternate success and failure: never 3 in a row, but a 50 % failure ratio.
        for (var i = 0; i < 10; i++)
        {
            var result = i % 2 == 0 ? Success : Failure();
            await health.Pipeline.ExecuteAsync(_ => ValueTask.FromResult(result));
        }

        Assert.Equal(BreakerState.Open, health.State);
        await Assert.ThrowsAsync<Polly.CircuitBreaker.BrokenCircuitException>(async () => await health.Pipeline.ExecuteAsync(_ => ValueTask.FromResult(Success)));
        _time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(BreakerState.HalfOpen, health.State);
        await health.Pipeline.ExecuteAsync(_ => ValueTask.FromResult(Success));
        Assert.Equal(BreakerState.Closed, health.State);
    }

    [Fact]
    public async Task PollyRatioBreaker_StreamsBrokenAfterTheFirstByte_CountAsFailures()
    {
        var (registry, config) = Create(d =>
        {
            d.Breaker.ConsecutiveFailures = 1000;
            d.Breaker.FailureRatio = 0.5;
            d.Breaker.MinimumThroughput = 4;
        });
        var health = registry.Get(config.Deployments["d"]);
        var brokenStream = new AttemptResult(AttemptDisposition.FailedAfterFirstByte, null, TimeSpan.FromMilliseconds(5));

        // Two served, two broken mid-stream: a ratio of 0.5 over the minimum throughput.
        foreach (var result in new[] { Success, brokenStream, Success, brokenStream })
        {
            await health.Pipeline.ExecuteAsync(_ => ValueTask.FromResult(result));
        }

        Assert.Equal(BreakerState.Open, health.State);
    }

    [Fact]
    public async Task PollyRatioBreaker_FailuresBelowMinimumThroughput_DoNotOpenIt()
    {
        var (registry, config) = Create(d =>
        {
            d.Breaker.ConsecutiveFailures = 1000;
            d.Breaker.FailureRatio = 0.5;
            d.Breaker.MinimumThroughput = 10;
        });
        var health = registry.Get(config.Deployments["d"]);

        // Nine failures out of nine: a ratio of 1, but one request short of the throughput that makes it count.
        for (var i = 0; i < 9; i++)
        {
            await health.Pipeline.ExecuteAsync(_ => ValueTask.FromResult(Failure()));
        }
        Assert.Equal(BreakerState.Closed, health.State);
        Assert.Null(health.AvailableAt);

        // The tenth reaches it: the window did count all nine.
        await health.Pipeline.ExecuteAsync(_ => ValueTask.FromResult(Failure()));
        Assert.Equal(BreakerState.Open, health.State);
    }

    [Fact]
    public async Task PollyRatioBreaker_HalfOpen_AdmitsExactlyOneProbeUnderConcurrency()
    {
        var (registry, config) = Create(d =>
        {
            d.Breaker.ConsecutiveFailures = 1000;
            d.Breaker.FailureRatio = 0.5;
            d.Breaker.MinimumThroughput = 2;
        });
        var health = registry.Get(config.Deployments["d"]);
        await health.Pipeline.ExecuteAsync(_ => ValueTask.FromResult(Failure()));
        await health.Pipeline.ExecuteAsync(_ => ValueTask.FromResult(Failure()));
        Assert.Equal(BreakerState.Open, health.State);
        _time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(BreakerState.HalfOpen, health.State);

        // 16 requests on the thread pool race for the half-open breaker; the one let through is held until all
        // the others have had their answer.
        var probeResult = new TaskCompletionSource<AttemptResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        var admitted = 0;
        var racers = Enumerable.Range(0, 16).Select(_ => Task.Run(async () =>
        {
            try
            {
                await health.Pipeline.ExecuteAsync(async _ =>
                {
                    Interlocked.Increment(ref admitted);
                    return await probeResult.Task;
                });
                return true;
            }
            catch (Polly.CircuitBreaker.BrokenCircuitException)
            {
                return false;
            }
        })).ToArray();

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        // The admitted one may reach its callback after the others were turned away (Polly runs the half-open event first).
        while ((racers.Count(t => t.IsCompleted) < 15 || Volatile.Read(ref admitted) == 0) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }
        Assert.Equal(15, racers.Count(t => t.IsCompleted));
        Assert.All(racers.Where(t => t.IsCompleted), t => Assert.False(t.Result));
        Assert.Equal(1, Volatile.Read(ref admitted));
        Assert.Equal(BreakerState.HalfOpen, health.State);

        probeResult.SetResult(Success);
        Assert.Equal(1, (await Task.WhenAll(racers)).Count(served => served));
        Assert.Equal(BreakerState.Closed, health.State);
    }

    [Fact]
    public async Task Reload_DeploymentRemovedThenAddedBack_NewHealthHasItsOwnBreaker()
    {
        var d = RoutingTestConfiguration.OpenAi();
        d.Breaker.MinimumThroughput = 2;
        d.Breaker.ConsecutiveFailures = 1000;
        var configuration = new RoutingTestConfiguration(_time, ("d", d), ("other", RoutingTestConfiguration.OpenAi(priority: 1)));
        configuration.Options.Models["m"].Deployments.Remove("d");
        Assert.Empty(configuration.Provider.Reload(configuration.Options));
        Assert.False(configuration.Registry.TryGet("d", out _));
        configuration.Options.Models["m"].Deployments["d"] = d;
        Assert.Empty(configuration.Provider.Reload(configuration.Options));

        var health = configuration.Health("d");
        await health.Pipeline.ExecuteAsync(_ => ValueTask.FromResult(Failure()));
        await health.Pipeline.ExecuteAsync(_ => ValueTask.FromResult(Failure()));

        // What the selector and the 503's Retry-After read, and what the operator's recover acts on.
        Assert.Equal(BreakerState.Open, health.State);
        Assert.Equal(_time.GetUtcNow() + TimeSpan.FromSeconds(30), health.AvailableAt);
        Assert.Equal(["other"], new BreakerAwareSelector(configuration.Registry).Select(configuration.Route).Candidates.Select(h => h.Deployment.Id));
        await health.RecoverAsync();
        Assert.Equal(BreakerState.Closed, health.State);
        await health.Pipeline.ExecuteAsync(_ => ValueTask.FromResult(Success));
    }

    [Fact]
    public void Snapshot_ReportsStatistics()
    {
        var (registry, config) = Create();
        var health = registry.Get(config.Deployments["d"]);

        Run(health, Success);
        Run(health, Success);
        Run(health, Failure());
        var snapshot = health.Snapshot();

        Assert.Equal(2, snapshot.Successes);
        Assert.Equal(1, snapshot.Failures);
        Assert.Equal(2.0 / 3, snapshot.SuccessRate!.Value, 3);
        Assert.Equal(10, snapshot.LatencyEwmaMs);
        Assert.Equal(1, snapshot.ConsecutiveFailures);
        Assert.Equal("status", snapshot.LastError);

        health.ResetStatistics();
        Assert.Equal(0, health.Snapshot().Successes);
    }
}
