using LlmProxy.Caching.Memory;

namespace LlmProxy.Tests.Caching;

public sealed class MemoryResponseCacheStoreTests
{
    private static readonly CancellationToken None = CancellationToken.None;
    private readonly FakeTimeProvider _time = new();

    private static byte[] Value(int size, byte fill = 1) => Enumerable.Repeat(fill, size).ToArray();

    [Fact]
    public async Task GetAsync_AfterSet_ReturnsValue()
    {
        var store = new MemoryResponseCacheStore(1024 * 1024, _time);
        await store.SetAsync("k", Value(10), TimeSpan.FromMinutes(1), None);

        Assert.Equal(Value(10), await store.GetAsync("k", None));
        Assert.Null(await store.GetAsync("other", None));
    }

    [Fact]
    public async Task GetAsync_AfterTtl_ReturnsNullAndFreesSpace()
    {
        var store = new MemoryResponseCacheStore(1024 * 1024, _time);
        await store.SetAsync("k", Value(10), TimeSpan.FromMinutes(1), None);

        _time.Advance(TimeSpan.FromSeconds(59));
        Assert.NotNull(await store.GetAsync("k", None));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(await store.GetAsync("k", None));
        Assert.Equal(0, store.Size);
        Assert.Equal(0, store.Count);
    }

    [Fact]
    public async Task SetAsync_OverMaxBytes_EvictsLeastRecentlyUsed()
    {
        var cost = MemoryResponseCacheStore.Cost("k1", Value(100));
        var store = new MemoryResponseCacheStore(cost * 3, _time);
        await store.SetAsync("k1", Value(100), TimeSpan.FromHours(1), None);
        await store.SetAsync("k2", Value(100), TimeSpan.FromHours(1), None);
        await store.SetAsync("k3", Value(100), TimeSpan.FromHours(1), None);
        Assert.NotNull(await store.GetAsync("k1", None)); // k1 is now the most recently used; k2 the least

        await store.SetAsync("k4", Value(100), TimeSpan.FromHours(1), None);

        Assert.Null(await store.GetAsync("k2", None));
        Assert.NotNull(await store.GetAsync("k1", None));
        Assert.NotNull(await store.GetAsync("k3", None));
        Assert.NotNull(await store.GetAsync("k4", None));
        Assert.Equal(cost * 3, store.Size);
    }

    [Fact]
    public async Task SetAsync_LargeEntry_EvictsAsManyAsNeeded()
    {
        var small = MemoryResponseCacheStore.Cost("k1", Value(100));
        var store = new MemoryResponseCacheStore(small * 4, _time);
        for (var i = 1; i <= 4; i++)
        {
            await store.SetAsync("k" + i, Value(100), TimeSpan.FromHours(1), None);
        }

        // Costs two and a half small entries: three of them must go.
        await store.SetAsync("big", Value((int)(small * 5 / 2) - ("big".Length * 2) - MemoryResponseCacheStore.EntryOverhead), TimeSpan.FromHours(1), None);

        Assert.NotNull(await store.GetAsync("big", None));
        Assert.Null(await store.GetAsync("k1", None));
        Assert.Null(await store.GetAsync("k2", None));
        Assert.Null(await store.GetAsync("k3", None));
        Assert.NotNull(await store.GetAsync("k4", None));
        Assert.True(store.Size <= small * 4);
    }

    [Fact]
    public async Task SetAsync_EntryLargerThanStore_NotStoredAndNothingEvicted()
    {
        var store = new MemoryResponseCacheStore(1000, _time);
        await store.SetAsync("small", Value(10), TimeSpan.FromHours(1), None);

        await store.SetAsync("huge", Value(2000), TimeSpan.FromHours(1), None);

        Assert.Null(await store.GetAsync("huge", None));
        Assert.NotNull(await store.GetAsync("small", None));
    }

    [Fact]
    public async Task SetAsync_SameKey_ReplacesValueAndAccounting()
    {
        var store = new MemoryResponseCacheStore(1024 * 1024, _time);
        await store.SetAsync("k", Value(10, 1), TimeSpan.FromHours(1), None);
        await store.SetAsync("k", Value(20, 2), TimeSpan.FromHours(1), None);

        Assert.Equal(Value(20, 2), await store.GetAsync("k", None));
        Assert.Equal(1, store.Count);
        Assert.Equal(MemoryResponseCacheStore.Cost("k", Value(20)), store.Size);
    }

    [Fact]
    public async Task SetAsync_NonPositiveTtl_NotStored()
    {
        var store = new MemoryResponseCacheStore(1024, _time);
        await store.SetAsync("k", Value(10), TimeSpan.Zero, None);

        Assert.Null(await store.GetAsync("k", None));
    }

    [Fact]
    public async Task ConcurrentUse_ManyThreads_StaysWithinBoundAndConsistent()
    {
        var cost = MemoryResponseCacheStore.Cost("key-000", Value(50));
        var store = new MemoryResponseCacheStore(cost * 20, _time);

        await Parallel.ForAsync(0, 4000, async (i, ct) =>
        {
            var key = "key-" + (i % 100).ToString("000", System.Globalization.CultureInfo.InvariantCulture);
            if (i % 3 == 0)
            {
                await store.SetAsync(key, Value(50, (byte)(i % 100)), TimeSpan.FromHours(1), ct);
            }
            else if (await store.GetAsync(key, ct) is { } value)
            {
                Assert.Equal(50, value.Length);
            }
        });

        Assert.True(store.Size <= cost * 20);
        Assert.Equal(store.Count * cost, store.Size);
    }
}
