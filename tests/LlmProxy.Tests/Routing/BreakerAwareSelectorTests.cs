using LlmProxy.Routing;

namespace LlmProxy.Tests.Routing;

public sealed class BreakerAwareSelectorTests
{
    private const int Rounds = 6000;
    private readonly FakeTimeProvider _time = new();

    [Fact]
    public void Select_EqualWeightsOneWithARequestInFlight_PrefersTheIdleOneTwoToOne()
    {
        var configuration = new RoutingTestConfiguration(_time, ("busy", RoutingTestConfiguration.OpenAi()), ("idle", RoutingTestConfiguration.OpenAi()));
        var selector = new BreakerAwareSelector(configuration.Registry);
        var busy = configuration.Health("busy");
        Assert.True(busy.TryEnter(out var isProbe));

        var idleFirst = CountFirst(selector, configuration, "idle");

        // Effective weights 1/(1+0) = 1 and 1/(1+1) = 0.5, so "idle" comes first with p = 2/3: 4,000 of 6,000.
        // Binomial sd = sqrt(6000 * 2/3 * 1/3) = 36.5; +-180 is about 5 sd. Without the in-flight term p = 1/2: 3,000.
        Assert.InRange(idleFirst, 3820, 4180);

        // Once the request has finished, the split is even again.
        busy.Exit(isProbe, null);
        Assert.InRange(CountFirst(selector, configuration, "idle"), 2820, 3180); // sd = 38.7
    }

    [Fact]
    public void Select_BusyDeployment_StaysACandidateAfterTheIdleOne()
    {
        var configuration = new RoutingTestConfiguration(_time, ("busy", RoutingTestConfiguration.OpenAi()), ("idle", RoutingTestConfiguration.OpenAi()));
        var busy = configuration.Health("busy");
        for (var i = 0; i < 1000; i++)
        {
            Assert.True(busy.TryEnter(out _));
        }

        var candidates = new BreakerAwareSelector(configuration.Registry).Select(configuration.Route).Candidates;

        // Load only reorders: the busy deployment remains the failover target.
        Assert.Equal(2, candidates.Count);
        Assert.Contains(candidates, h => h.Deployment.Id == "busy");
    }

    private static int CountFirst(BreakerAwareSelector selector, RoutingTestConfiguration configuration, string id)
    {
        var count = 0;
        for (var i = 0; i < Rounds; i++)
        {
            if (selector.Select(configuration.Route).Candidates[0].Deployment.Id == id)
            {
                count++;
            }
        }
        return count;
    }
}
