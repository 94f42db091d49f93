using LlmProxy.Caching.Redis;

namespace LlmProxy.Tests.Caching;

public sealed class StoreBackoffTests
{
    private readonly FakeTimeProvider _time = new();

    [Fact]
    public void TryEnter_Closed_Allows()
    {
        var backoff = new StoreBackoff(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30), _time);

        Assert.True(backoff.TryEnter(out var probe));
        Assert.False(probe);
    }

    [Fact]
    public void OnFailure_OpensForBackoffThenAllowsOneProbe()
    {
        var backoff = new StoreBackoff(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30), _time);

        Assert.Equal(TimeSpan.FromSeconds(1), backoff.OnFailure(probe: false));
        Assert.False(backoff.TryEnter(out _));
        _time.Advance(TimeSpan.FromMilliseconds(999));
        Assert.False(backoff.TryEnter(out _));
        _time.Advance(TimeSpan.FromMilliseconds(1));

        Assert.True(backoff.TryEnter(out var probe));
        Assert.True(probe);
        Assert.False(backoff.TryEnter(out _)); // one probe at a time
    }

    [Fact]
    public void OnFailure_FailedProbes_DoubleUpToMax()
    {
        var backoff = new StoreBackoff(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5), _time);
        backoff.OnFailure(probe: false);
        var pauses = new List<TimeSpan>();
        for (var i = 0; i < 4; i++)
        {
            _time.Advance(backoff.CurrentBackoff);
            Assert.True(backoff.TryEnter(out var probe));
            pauses.Add(backoff.OnFailure(probe)!.Value);
        }

        Assert.Equal([TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(5)], pauses);
    }

    [Fact]
    public void OnFailure_StragglerWhileOpen_DoesNotExtend()
    {
        var backoff = new StoreBackoff(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30), _time);
        backoff.OnFailure(probe: false);

        Assert.Null(backoff.OnFailure(probe: false));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(backoff.TryEnter(out _));
    }

    [Fact]
    public void OnSuccess_Probe_ClosesAndResets()
    {
        var backoff = new StoreBackoff(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30), _time);
        backoff.OnFailure(probe: false);
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(backoff.TryEnter(out var probe));

        Assert.True(backoff.OnSuccess(probe));
        Assert.False(backoff.IsOpen);
        Assert.True(backoff.TryEnter(out var next));
        Assert.False(next);
        Assert.Equal(TimeSpan.FromSeconds(1), backoff.CurrentBackoff);
    }

    [Fact]
    public void Abandon_Probe_LetsAnotherProbe()
    {
        var backoff = new StoreBackoff(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30), _time);
        backoff.OnFailure(probe: false);
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(backoff.TryEnter(out var probe));

        backoff.Abandon(probe);

        Assert.True(backoff.TryEnter(out var again));
        Assert.True(again);
    }
}
