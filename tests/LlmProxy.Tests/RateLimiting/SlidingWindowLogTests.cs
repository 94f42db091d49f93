using LlmProxy.RateLimiting;

namespace LlmProxy.Tests.RateLimiting;

public sealed class SlidingWindowLogTests
{
    private const long Window = 60_000; // clock units: milliseconds here

    [Fact]
    public void WaitFor_UnderLimit_IsZero()
    {
        var log = new SlidingWindowLog(Window);
        log.Add(0, 2);

        Assert.Equal(0, log.WaitFor(10, 3, 5));
    }

    [Fact]
    public void WaitFor_Full_IsUntilTheOldestNeededEntryLeaves()
    {
        var log = new SlidingWindowLog(Window);
        log.Add(0, 1);
        log.Add(1_000, 1);
        log.Add(2_000, 1);

        // Limit 3, all used: the entry at t=0 frees a slot at t=60 000.
        Assert.Equal(55_000, log.WaitFor(5_000, 1, 3));
        // Limit 2 (tightened): two entries must leave; the second leaves at 61 000.
        Assert.Equal(56_000, log.WaitFor(5_000, 1, 2));
    }

    [Fact]
    public void WaitFor_AmountAboveLimit_IsNull()
    {
        var log = new SlidingWindowLog(Window);

        Assert.Null(log.WaitFor(0, 11, 10));
    }

    [Fact]
    public void WaitFor_Tokens_WalksEntriesUntilEnoughIsFreed()
    {
        var log = new SlidingWindowLog(Window);
        log.Add(0, 30);
        log.Add(10_000, 50);
        log.Add(20_000, 20);

        // Limit 100, total 100; 60 more needs 60 freed: 30 (t=0) is not enough, 30+50 (t=10 000) is.
        Assert.Equal(40_000, log.WaitFor(30_000, 60, 100));
    }

    [Fact]
    public void Evict_EntryExactlyOneWindowOld_Leaves()
    {
        var log = new SlidingWindowLog(Window);
        log.Add(0, 1);
        log.Add(1, 1);

        log.Evict(Window - 1);
        Assert.Equal(2, log.Count);
        log.Evict(Window);
        Assert.Equal(1, log.Count);
        Assert.Equal(1, log.Total);
        log.Evict(Window + 1);
        Assert.Equal(0, log.Count);
        Assert.Equal(0, log.Total);
    }

    [Fact]
    public void Evict_SlidingWindow_CountsOnlyTheLastWindow()
    {
        var log = new SlidingWindowLog(Window);
        for (var i = 0; i < 30; i++)
        {
            log.Add(0, 1);
        }
        for (var i = 0; i < 30; i++)
        {
            log.Add(30_000, 1);
        }

        log.Evict(59_999);
        Assert.Equal(60, log.Total);
        log.Evict(60_000);
        Assert.Equal(30, log.Total);
        Assert.Equal(30_000, log.UntilEmpty(60_000));
    }

    [Fact]
    public void TryAdjust_EntryInWindow_ChangesTotalKeepsTime()
    {
        var log = new SlidingWindowLog(Window);
        log.Add(0, 100, "a");
        log.Add(10_000, 50, "b");

        Assert.True(log.TryAdjust("a", 10));
        Assert.Equal(60, log.Total);
        Assert.True(log.TryAdjust("b", 80));
        Assert.Equal(90, log.Total);

        log.Evict(Window);
        Assert.Equal(80, log.Total);
        Assert.False(log.TryAdjust("a", 5));
    }

    [Fact]
    public void UntilEmpty_IsUntilTheNewestEntryLeaves()
    {
        var log = new SlidingWindowLog(Window);
        Assert.Equal(0, log.UntilEmpty(0));
        log.Add(1_000, 1);
        log.Add(5_000, 1);

        Assert.Equal(55_000, log.UntilEmpty(10_000));
    }

    [Fact]
    public void Add_TimeBeforeNewest_KeepsLogOrdered()
    {
        var log = new SlidingWindowLog(Window);
        log.Add(5_000, 1);
        log.Add(4_000, 1);

        log.Evict(64_999);
        Assert.Equal(2, log.Count);
        log.Evict(65_000);
        Assert.Equal(0, log.Count);
    }
}
