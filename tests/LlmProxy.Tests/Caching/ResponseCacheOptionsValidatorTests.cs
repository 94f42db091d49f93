using LlmProxy.Caching;

namespace LlmProxy.Tests.Caching;

public sealed class ResponseCacheOptionsValidatorTests
{
    [Fact]
    public void Validate_Defaults_Succeeds()
    {
        Assert.True(new ResponseCacheOptionsValidator().Validate(null, new ResponseCacheOptions()).Succeeded);
    }

    [Fact]
    public void Validate_EveryProblem_ReportedTogether()
    {
        var options = new ResponseCacheOptions { Ttl = TimeSpan.Zero, MaxEntryBytes = 0, Store = "redis" };
        options.Models["m"] = new ModelResponseCacheOptions { Ttl = TimeSpan.FromSeconds(-1) };
        options.Tenants["t"] = new TenantResponseCacheOptions { Ttl = TimeSpan.Zero, MaxEntryBytes = -1 };

        var result = new ResponseCacheOptionsValidator().Validate(null, options);

        Assert.True(result.Failed);
        Assert.Contains(result.Failures!, f => f.Contains("LlmProxy:Cache:Ttl", StringComparison.Ordinal));
        Assert.Contains(result.Failures!, f => f.Contains("MaxEntryBytes", StringComparison.Ordinal));
        Assert.Contains(result.Failures!, f => f.Contains("Redis:Configuration is required", StringComparison.Ordinal));
        Assert.Contains(result.Failures!, f => f.Contains("Models:m:Ttl", StringComparison.Ordinal));
        Assert.Contains(result.Failures!, f => f.Contains("Tenants:t:Ttl", StringComparison.Ordinal));
        Assert.Contains(result.Failures!, f => f.Contains("Tenants:t:MaxEntryBytes", StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_UnknownStore_Fails()
    {
        var result = new ResponseCacheOptionsValidator().Validate(null, new ResponseCacheOptions { Store = "memcached" });

        Assert.Contains(result.Failures!, f => f.Contains("'memcached'", StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_RedisWithConfiguration_Succeeds()
    {
        var options = new ResponseCacheOptions { Store = "redis", Redis = { Configuration = "127.0.0.1:6379" } };

        Assert.True(new ResponseCacheOptionsValidator().Validate(null, options).Succeeded);
    }
}
