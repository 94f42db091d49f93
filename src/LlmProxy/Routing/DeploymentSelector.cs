namespace LlmProxy.Routing;

/// <summary>Orders the deployments of a route into the candidates one request tries, first to last.</summary>
public interface IDeploymentSelector
{
    IReadOnlyList<Deployment> SelectCandidates(ModelRoute route);
}

/// <summary>
/// Priority order; within one priority a weighted random order, so traffic splits by weight and a failed
/// first choice falls over to a sibling before the next priority.
/// </summary>
internal sealed class PriorityWeightedSelector : IDeploymentSelector
{
    public IReadOnlyList<Deployment> SelectCandidates(ModelRoute route)
    {
        var enabled = route.Deployments.Where(d => d.IsEnabled).ToList();
        var result = new List<Deployment>(enabled.Count);
        foreach (var group in enabled.GroupBy(d => d.Priority).OrderBy(g => g.Key))
        {
            var remaining = group.ToList();
            while (remaining.Count > 0)
            {
                var pick = WeightedIndex(remaining);
                result.Add(remaining[pick]);
                remaining.RemoveAt(pick);
            }
        }
        return result;
    }

    private static int WeightedIndex(List<Deployment> deployments)
    {
        if (deployments.Count == 1)
        {
            return 0;
        }
        var total = deployments.Sum(d => d.Weight);
        var roll = Random.Shared.Next(total);
        for (var i = 0; i < deployments.Count; i++)
        {
            roll -= deployments[i].Weight;
            if (roll < 0)
            {
                return i;
            }
        }
        return deployments.Count - 1;
    }
}
