using System.Collections.Concurrent;
using LlmProxy.Configuration;
using Polly.Registry;

namespace LlmProxy.Routing;

/// <summary>
/// One <see cref="DeploymentHealth"/> per deployment id, created on first use. Polly pipelines come from a
/// <see cref="ResiliencePipelineRegistry{TKey}"/> keyed by deployment id and generation: each
/// <see cref="DeploymentHealth"/> gets a pipeline of its own, bound to its own breaker state. A configuration
/// reload keeps the state of deployments whose id is unchanged; a deployment that a reload removes and a later
/// one adds back starts afresh. Breaker changes reach operators through the gateway's own
/// <c>llmproxy.deployment.breaker_state</c> gauge and log event 2101, which cover both breakers, drains and 429
/// cool-downs; Polly.Extensions' telemetry would see only the ratio breaker, and would add a counter, a histogram and
/// two log lines to every upstream attempt, so Polly.Core alone is used.
/// </summary>
public sealed partial class DeploymentHealthRegistry : IDisposable
{
    private readonly ConcurrentDictionary<string, DeploymentHealth> _health = new(StringComparer.Ordinal);
    // Keyed by id alone, an id that left the configuration and came back would get the cached pipeline, still wired
    // to the removed instance's state provider and manual control: its State would ignore the ratio breaker and an
    // operator's recover could not close it. Polly's registry cannot remove an entry, so a removed deployment's
    // pipeline stays there, unreachable, until shutdown.
    private readonly ResiliencePipelineRegistry<PipelineKey> _pipelines = new(new ResiliencePipelineRegistryOptions<PipelineKey>
    {
        BuilderNameFormatter = key => key.DeploymentId,
    });
    private long _generation;
    private readonly TimeProvider _time;
    private readonly ILogger<DeploymentHealthRegistry> _logger;

    public DeploymentHealthRegistry(GatewayConfigurationProvider configuration, TimeProvider time, ILogger<DeploymentHealthRegistry> logger)
    {
        _time = time;
        _logger = logger;
        Refresh(configuration.Current);
        configuration.Changed += Refresh;
    }

    public DeploymentHealth Get(Deployment deployment)
    {
        var health = _health.GetOrAdd(deployment.Id, static (_, state) => state.self.Create(state.deployment), (self: this, deployment));
        if (!ReferenceEquals(health.Deployment, deployment))
        {
            health.Deployment = deployment;
        }
        return health;
    }

    public bool TryGet(string deploymentId, out DeploymentHealth health) => _health.TryGetValue(deploymentId, out health!);

    public IEnumerable<DeploymentHealth> All => _health.Values.OrderBy(h => h.Deployment.ModelName, StringComparer.Ordinal).ThenBy(h => h.Deployment.Priority).ThenBy(h => h.Deployment.Id, StringComparer.Ordinal);

    private void Refresh(GatewayConfiguration configuration)
    {
        foreach (var deployment in configuration.Deployments.Values)
        {
            Get(deployment);
        }
        foreach (var id in _health.Keys)
        {
            if (!configuration.Deployments.ContainsKey(id))
            {
                _health.TryRemove(id, out _);
            }
        }
    }

    private DeploymentHealth Create(Deployment deployment)
    {
        var key = new PipelineKey(deployment.Id, Interlocked.Increment(ref _generation));
        var health = new DeploymentHealth(deployment, _time, configure => _pipelines.GetOrAddPipeline<AttemptResult>(key, configure));
        health.StateChanged += (h, state, rule) => LogStateChanged(_logger, h.Deployment.Id, state, rule);
        return health;
    }

    public void Dispose() => _pipelines.Dispose();

    private readonly record struct PipelineKey(string DeploymentId, long Generation);

    [LoggerMessage(EventId = 2101, Level = LogLevel.Warning, Message = "Deployment {DeploymentId} breaker is now {State} ({Rule})")]
    private static partial void LogStateChanged(ILogger logger, string deploymentId, BreakerState state, string rule);
}
