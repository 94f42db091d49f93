using LlmProxy.Caching;

namespace LlmProxy.Tests.Caching;

public sealed class ClientCacheControlsTests
{
    private static ClientCacheControls Read(string? cacheControl = null, string? ttl = null)
    {
        IHeaderDictionary headers = new HeaderDictionary();
        if (cacheControl is not null)
        {
            headers.CacheControl = cacheControl;
        }
        if (ttl is not null)
        {
            headers[ResponseCacheHeaders.Ttl] = ttl;
        }
        return ClientCacheControls.Read(headers);
    }

    [Fact]
    public void Read_NoHeaders_NothingAsked()
    {
        Assert.Equal(new ClientCacheControls(false, false, null), Read());
    }

    [Theory]
    [InlineData("no-cache", true, false)]
    [InlineData("No-Cache", true, false)]
    [InlineData("no-store", false, true)]
    [InlineData("max-age=0, no-store , no-cache", true, true)]
    [InlineData("no-cache=\"x\"", true, false)]
    [InlineData("private", false, false)]
    public void Read_CacheControl_Directives(string header, bool noCache, bool noStore)
    {
        var controls = Read(header);

        Assert.Equal(noCache, controls.NoCache);
        Assert.Equal(noStore, controls.NoStore);
    }

    [Theory]
    [InlineData("60", 60.0, false)]
    [InlineData(" 1.5 ", 1.5, false)]
    [InlineData("0", 0.0, true)]
    public void Read_TtlHeader_Parsed(string header, double seconds, bool noStore)
    {
        var controls = Read(ttl: header);

        Assert.Equal(TimeSpan.FromSeconds(seconds), controls.Ttl);
        Assert.Equal(noStore, controls.NoStore);
    }

    [Theory]
    [InlineData("-5")]
    [InlineData("soon")]
    [InlineData("1e3")]
    public void Read_InvalidTtl_Ignored(string header)
    {
        Assert.Null(Read(ttl: header).Ttl);
    }
}
