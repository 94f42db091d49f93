namespace LlmProxy.Routing;

/// <summary>Chooses, for one request, which deployments to try and in which order.</summary>
public interface IDeploymentSelector
{
    DeploymentSelection Select(ModelRoute route);
}

/// <param name="Candidates">Deployments to try, first to last.</param>
/// <param name="EarliestAvailableAt">When no deployment can take traffic: the earliest time one can again.</param>
public sealed record DeploymentSelection(IReadOnlyList<DeploymentHealth> Candidates, DateTimeOffset? EarliestAvailableAt);

/// <summary>
/// Highest priority first, skipping deployments that are disabled or whose breaker is open (half-open ones
/// are candidates: they need their probe). Within one priority, a weighted random order in which each
/// deployment's weight is divided by its in-flight requests + 1, so traffic splits by weight while a
/// slower, more loaded deployment gets less of it.
/// </summary>
internal sealed class BreakerAwareSelector(DeploymentHealthRegistry registry) : IDeploymentSelector
{
    public DeploymentSelection Select(ModelRoute route)
    {
        var candidates = new List<DeploymentHealth>(route.Deployments.Count);
        DateTimeOffset? earliest = null;
        var group = new List<DeploymentHealth>(route.Deployments.Count);
        var deployments = route.Deployments; // already ordered by priority
        for (var i = 0; i < deployments.Count;)
        {
            var priority = deployments[i].Priority;
            group.Clear();
            for (; i < deployments.Count && deployments[i].Priority == priority; i++)
            {
                if (!deployments[i].IsEnabled)
                {
                    continue;
                }
                var health = registry.Get(deployments[i]);
                if (health.State == BreakerState.Open)
                {
                    if (health.AvailableAt is { } at && (earliest is null || at < earliest))
                    {
                        earliest = at;
                    }
                    continue;
                }
                group.Add(health);
            }
            AddWeightedOrder(group, candidates);
        }
        return new DeploymentSelection(candidates, candidates.Count == 0 ? earliest : null);
    }

    private static void AddWeightedOrder(List<DeploymentHealth> group, List<DeploymentHealth> into)
    {
        while (group.Count > 0)
        {
            var pick = 0;
            if (group.Count > 1)
            {
                var total = 0.0;
                foreach (var health in group)
                {
                    total += EffectiveWeight(health);
                }
                var roll = Random.Shared.NextDouble() * total;
                for (pick = 0; pick < group.Count - 1; pick++)
                {
                    roll -= EffectiveWeight(group[pick]);
                    if (roll < 0)
                    {
                        break;
                    }
                }
            }
            into.Add(group[pick]);
            group.RemoveAt(pick);
        }
    }

    private static double EffectiveWeight(DeploymentHealth health) => health.Deployment.Weight / (1.0 + health.InFlight);
}
