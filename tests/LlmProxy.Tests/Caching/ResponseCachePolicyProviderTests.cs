using LlmProxy.Caching;

namespace LlmProxy.Tests.Caching;

public sealed class ResponseCachePolicyProviderTests
{
    [Fact]
    public void Resolve_Defaults_Disabled()
    {
        Assert.False(new ResponseCachePolicyProvider(new ResponseCacheOptions()).Resolve("t", "m").Enabled);
    }

    [Fact]
    public void Resolve_GlobalEnabled_UsesGlobalDefaults()
    {
        var policy = new ResponseCachePolicyProvider(new ResponseCacheOptions { Enabled = true }).Resolve("t", "m");

        Assert.Equal(new ResponseCachePolicy(true, TimeSpan.FromHours(1), 1024 * 1024, true), policy);
    }

    [Fact]
    public void Resolve_ModelEnabledWhileGlobalOff_EnabledForThatModelOnly()
    {
        var options = new ResponseCacheOptions();
        options.Models["cheap"] = new ModelResponseCacheOptions { Enabled = true };
        var provider = new ResponseCachePolicyProvider(options);

        Assert.True(provider.Resolve("t", "cheap").Enabled);
        Assert.True(provider.Resolve("t", "CHEAP").Enabled);
        Assert.False(provider.Resolve("t", "other").Enabled);
    }

    [Fact]
    public void Resolve_ExplicitFalse_WinsOverAnyTrue()
    {
        var options = new ResponseCacheOptions { Enabled = true };
        options.Models["m"] = new ModelResponseCacheOptions { Enabled = true };
        options.Tenants["private"] = new TenantResponseCacheOptions { Enabled = false };
        options.Models["nocache"] = new ModelResponseCacheOptions { Enabled = false };
        options.Tenants["keen"] = new TenantResponseCacheOptions { Enabled = true };
        var provider = new ResponseCachePolicyProvider(options);

        Assert.False(provider.Resolve("private", "m").Enabled);
        Assert.False(provider.Resolve("keen", "nocache").Enabled);
        Assert.True(provider.Resolve("keen", "m").Enabled);
    }

    [Fact]
    public void Resolve_Ttls_ShorterOfModelAndTenantElseGlobal()
    {
        var options = new ResponseCacheOptions { Enabled = true, Ttl = TimeSpan.FromMinutes(10) };
        options.Models["long"] = new ModelResponseCacheOptions { Ttl = TimeSpan.FromHours(24), MaxEntryBytes = 42 };
        options.Tenants["brief"] = new TenantResponseCacheOptions { Ttl = TimeSpan.FromMinutes(1), AllowClientControls = false };
        var provider = new ResponseCachePolicyProvider(options);

        Assert.Equal(TimeSpan.FromMinutes(10), provider.Resolve("t", "m").Ttl);
        Assert.Equal(TimeSpan.FromHours(24), provider.Resolve("t", "long").Ttl);
        Assert.Equal(42, provider.Resolve("t", "long").MaxEntryBytes);
        Assert.Equal(TimeSpan.FromMinutes(1), provider.Resolve("brief", "long").Ttl);
        Assert.False(provider.Resolve("brief", "m").AllowClientControls);
        Assert.True(provider.Resolve("t", "m").AllowClientControls);
    }

    [Fact]
    public void Resolve_TenantMaxEntryBytes_SmallerOfModelAndTenantElseGlobal()
    {
        var options = new ResponseCacheOptions { Enabled = true, MaxEntryBytes = 1000 };
        options.Models["big"] = new ModelResponseCacheOptions { MaxEntryBytes = 5000 };
        options.Models["small"] = new ModelResponseCacheOptions { MaxEntryBytes = 100 };
        options.Tenants["frugal"] = new TenantResponseCacheOptions { MaxEntryBytes = 300 };
        options.Tenants["roomy"] = new TenantResponseCacheOptions { MaxEntryBytes = 2000 };
        var provider = new ResponseCachePolicyProvider(options);

        Assert.Equal(1000, provider.Resolve("t", "m").MaxEntryBytes);
        Assert.Equal(300, provider.Resolve("frugal", "m").MaxEntryBytes);
        Assert.Equal(300, provider.Resolve("FRUGAL", "big").MaxEntryBytes);
        Assert.Equal(100, provider.Resolve("frugal", "small").MaxEntryBytes);
        Assert.Equal(2000, provider.Resolve("roomy", "m").MaxEntryBytes);
        Assert.Equal(2000, provider.Resolve("roomy", "big").MaxEntryBytes);
    }
}
