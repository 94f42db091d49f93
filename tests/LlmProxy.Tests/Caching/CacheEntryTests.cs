using System.Text;
using LlmProxy.Caching;

namespace LlmProxy.Tests.Caching;

public sealed class CacheEntryTests
{
    [Fact]
    public void TryRead_CreatedEntry_RoundTrips()
    {
        var storedAt = new DateTimeOffset(2026, 5, 1, 12, 0, 0, 123, TimeSpan.Zero);

        var entry = CacheEntry.Create(Encoding.UTF8.GetBytes("{}"), storedAt);

        Assert.True(CacheEntry.TryRead(entry, out var readAt, out var body));
        Assert.Equal(storedAt, readAt);
        Assert.Equal("{}", Encoding.UTF8.GetString(body.Span));
    }

    [Theory]
    [InlineData(new byte[0])]
    [InlineData(new byte[] { 1, 0, 0 })]
    [InlineData(new byte[] { 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 123 })]
    public void TryRead_ForeignBytes_False(byte[] entry)
    {
        Assert.False(CacheEntry.TryRead(entry, out _, out _));
    }
}
