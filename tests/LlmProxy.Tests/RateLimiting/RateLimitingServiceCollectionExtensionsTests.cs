using LlmProxy.Pipeline;
using LlmProxy.RateLimiting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;

namespace LlmProxy.Tests.RateLimiting;

public sealed class RateLimitingServiceCollectionExtensionsTests
{
    private static ServiceCollection Services(params (string Key, string Value)[] settings)
    {
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder()
            .AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value))).Build());
        services.AddLogging();
        return services;
    }

    [Fact]
    public void AddLlmProxyRateLimiting_Stage_TakesItsPlaceInRegistrationOrderOnce()
    {
        var services = Services();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IChatMiddleware, OtherStage>());

        services.AddLlmProxyRateLimiting();
        services.AddLlmProxyRateLimiting();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IChatMiddleware, LaterStage>());

        Assert.Equal([typeof(OtherStage), typeof(RateLimitingChatMiddleware), typeof(LaterStage)],
            services.Where(d => d.ServiceType == typeof(IChatMiddleware)).Select(d => d.ImplementationType));
        Assert.Single(services, d => d.ImplementationType == typeof(BudgetSpendRecorder));
    }

    [Fact]
    public void AddLlmProxyRateLimiting_Defaults_LocalStoreAndNoCost()
    {
        using var provider = Services(("LlmProxy:RateLimits:Tenants:acme:RequestsPerMinute", "5")).AddLlmProxyRateLimiting().BuildServiceProvider();

        Assert.IsType<LocalRateLimitStore>(provider.GetRequiredService<IRateLimitStore>());
        Assert.IsType<NullRequestCostSource>(provider.GetRequiredService<IRequestCostSource>());
        Assert.Equal(5, provider.GetRequiredService<RateLimitPolicyProvider>().Resolve("acme", "k", "m").Scopes.Single().Limits.RequestsPerMinute);
    }

    [Fact]
    public void AddLlmProxyRateLimiting_RedisStore_IsWrappedInItsFailureMode()
    {
        using var provider = Services(("LlmProxy:RateLimits:Store", "redis"), ("LlmProxy:RateLimits:Redis:Configuration", "127.0.0.1:1"))
            .AddLlmProxyRateLimiting().BuildServiceProvider();

        Assert.IsType<FailoverRateLimitStore>(provider.GetRequiredService<IRateLimitStore>());
    }

    [Fact]
    public async Task Startup_InvalidLimits_FailsWithEveryProblem()
    {
        await using var provider = Services(("LlmProxy:RateLimits:Tenants:acme:RequestsPerMinute", "0"), ("LlmProxy:RateLimits:Store", "disk"))
            .AddLlmProxyRateLimiting().BuildServiceProvider();
        var startup = provider.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<RateLimitingStartup>().Single();

        var ex = await Assert.ThrowsAsync<LlmProxy.Configuration.GatewayConfigurationException>(() => startup.StartAsync(CancellationToken.None));

        Assert.Equal(2, ex.Problems.Count);
    }

    [Fact]
    public void AddLlmProxyRateLimiting_Configure_OverridesConfiguration()
    {
        using var provider = Services(("LlmProxy:RateLimits:Tenants:acme:RequestsPerMinute", "5"))
            .AddLlmProxyRateLimiting(o => o.Tenants["acme"].RequestsPerMinute = 7).BuildServiceProvider();

        Assert.Equal(7, provider.GetRequiredService<RateLimitPolicyProvider>().Resolve("acme", "k", "m").Scopes.Single().Limits.RequestsPerMinute);
    }

    private sealed class OtherStage : IChatMiddleware
    {
        public Task InvokeAsync(ChatContext context, ChatDelegate next) => next(context);
    }

    private sealed class LaterStage : IChatMiddleware
    {
        public Task InvokeAsync(ChatContext context, ChatDelegate next) => next(context);
    }
}
