using System.Collections.Concurrent;
using LlmProxy.Configuration;
using Polly.Registry;

namespace LlmProxy.Routing;

/// <summary>
/// One <see cref="DeploymentHealth"/> per deployment id, created on first use. Polly pipelines come from a
/// <see cref="ResiliencePipelineRegistry{TKey}"/> keyed by deployment id. A configuration reload keeps the
/// state of deployments whose id is unchanged.
/// </summary>
public sealed partial class DeploymentHealthRegistry : IDisposable
{
    private readonly ConcurrentDictionary<string, DeploymentHealth> _health = new(StringComparer.Ordinal);
    private readonly ResiliencePipelineRegistry<string> _pipelines = new();
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
        var health = new DeploymentHealth(deployment, _time, (key, configure) => _pipelines.GetOrAddPipeline<AttemptResult>(key, configure));
        health.StateChanged += (h, state, rule) => LogStateChanged(_logger, h.Deployment.Id, state, rule);
        return health;
    }

    public void Dispose() => _pipelines.Dispose();

    [LoggerMessage(EventId = 2101, Level = LogLevel.Warning, Message = "Deployment {DeploymentId} breaker is now {State} ({Rule})")]
    private static partial void LogStateChanged(ILogger logger, string deploymentId, BreakerState state, string rule);
}
