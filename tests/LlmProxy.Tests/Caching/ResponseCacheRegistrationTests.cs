using LlmProxy.Caching;
using LlmProxy.Caching.Memory;
using LlmProxy.Caching.Redis;
using LlmProxy.Pipeline;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LlmProxy.Tests.Caching;

public sealed class ResponseCacheRegistrationTests
{
    private static ServiceProvider Build(Dictionary<string, string?> settings, Action<IServiceCollection>? before = null)
    {
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
        services.AddLogging();
        before?.Invoke(services);
        services.AddLlmProxyResponseCache();
        services.AddLlmProxyResponseCache();
        return services.BuildServiceProvider();
    }

    [Fact]
    public void AddLlmProxyResponseCache_CalledTwice_OneStageAndOneHealthCheck()
    {
        using var provider = Build([]);

        Assert.Single(provider.GetServices<IChatMiddleware>().OfType<ResponseCacheMiddleware>());
        Assert.Single(provider.GetRequiredService<IOptions<HealthCheckServiceOptions>>().Value.Registrations, r => r.Name == "response-cache");
        Assert.IsType<MemoryResponseCacheStore>(provider.GetRequiredService<IResponseCacheStore>());
    }

    [Fact]
    public void AddLlmProxyResponseCache_StoreRedis_RedisStoreReplacesMemory()
    {
        using var provider = Build(new()
        {
            ["LlmProxy:Cache:Store"] = "redis",
            // Nothing listens there; abortConnect=false lets the store exist anyway.
            ["LlmProxy:Cache:Redis:Configuration"] = "127.0.0.1:1",
        });

        Assert.IsType<RedisResponseCacheStore>(provider.GetRequiredService<IResponseCacheStore>());
    }

    [Fact]
    public void AddLlmProxyResponseCache_HostRegisteredStore_Kept()
    {
        var custom = new RecordingStore();
        using var provider = Build([], services => services.AddSingleton<IResponseCacheStore>(custom));

        Assert.Same(custom, provider.GetRequiredService<IResponseCacheStore>());
    }

    [Fact]
    public void Options_InvalidSection_ReportedWhenResolved()
    {
        using var provider = Build(new() { ["LlmProxy:Cache:Store"] = "redis", ["LlmProxy:Cache:Ttl"] = "-00:01:00" });

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<ResponseCacheOptions>>().Value);
        Assert.Contains(error.Failures, f => f.Contains("Redis:Configuration is required", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.Contains("Ttl must be positive", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("redis:6379", false, 1000, 500, 250)]
    [InlineData("redis:6379,abortConnect=true,connectTimeout=5000,asyncTimeout=4000", true, 5000, 4000, 1000)]
    public void CreateConfiguration_FillsOnlyWhatTheStringLeavesOpen(string text, bool abort, int connectTimeout, int asyncTimeout, int heartbeatMs)
    {
        var configuration = RedisResponseCacheStore.CreateConfiguration(text, TimeSpan.FromMilliseconds(500));

        Assert.Equal(abort, configuration.AbortOnConnectFail);
        Assert.Equal(connectTimeout, configuration.ConnectTimeout);
        Assert.Equal(asyncTimeout, configuration.AsyncTimeout);
        // Timed-out commands are looked for on the heartbeat: often enough to give up within half the timeout past it.
        Assert.Equal(TimeSpan.FromMilliseconds(heartbeatMs), configuration.HeartbeatInterval);
        // A disconnected Redis is a miss at once, not a command queued until it times out.
        Assert.Same(StackExchange.Redis.BacklogPolicy.FailFast, configuration.BacklogPolicy);
    }
}
