using LlmProxy.Configuration;
using LlmProxy.RateLimiting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace LlmProxy.Tests.RateLimiting;

public sealed class RateLimitPolicyProviderTests
{
    private static RateLimitOptions Bind(params (string Key, string Value)[] values)
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>("LlmProxy:RateLimits:" + v.Key, v.Value)))
            .Build();
        var options = new RateLimitOptions();
        configuration.GetSection(RateLimitOptions.SectionName).Bind(options);
        return options;
    }

    private static RateLimitPolicyProvider Provider(RateLimitOptions options, MutableOptionsMonitor? monitor = null) =>
        new(monitor ?? new MutableOptionsMonitor(options), NullLogger<RateLimitPolicyProvider>.Instance);

    [Fact]
    public void Resolve_TenantKeyAndModelConfigured_AllThreeScopesApply()
    {
        var options = Bind(
            ("Tenants:acme:RequestsPerMinute", "100"),
            ("Tenants:acme:DefaultMaxTokens", "1000"),
            ("Tenants:acme:Keys:ci:RequestsPerMinute", "10"),
            ("Tenants:acme:Keys:ci:DefaultMaxTokens", "200"),
            ("Tenants:acme:Models:gpt-4o:TokensPerMinute", "5000"),
            ("Tenants:acme:Models:gpt-4o:DefaultMaxTokens", "300"));

        var policy = Provider(options).Resolve("acme", "ci", "gpt-4o");

        Assert.Equal(["t", "k:ci", "m:gpt-4o"], policy.Scopes.Select(s => s.Key));
        Assert.Equal(100, policy.Scopes[0].Limits.RequestsPerMinute);
        Assert.Equal(10, policy.Scopes[1].Limits.RequestsPerMinute);
        Assert.Equal(5000, policy.Scopes[2].Limits.TokensPerMinute);
        Assert.Equal(300, policy.DefaultMaxTokens);
        Assert.True(policy.LimitsTokens);
    }

    [Fact]
    public void Resolve_DefaultMaxTokens_MostSpecificLevelWins()
    {
        var options = Bind(("Tenants:acme:DefaultMaxTokens", "1000"), ("Tenants:acme:RequestsPerMinute", "1"),
            ("Tenants:acme:Keys:ci:DefaultMaxTokens", "200"));
        var provider = Provider(options);

        Assert.Equal(200, provider.Resolve("acme", "ci", "m").DefaultMaxTokens);
        Assert.Equal(1000, provider.Resolve("acme", "other", "m").DefaultMaxTokens);
        // A level with only DefaultMaxTokens has no limits of its own: no scope.
        Assert.Single(provider.Resolve("acme", "ci", "m").Scopes);
    }

    [Fact]
    public void Resolve_UnlistedTenant_GetsTheDefault_ListedTenantDoesNotInheritIt()
    {
        var options = Bind(("Default:RequestsPerMinute", "5"), ("Default:DailyBudgetUsd", "2.5"), ("Tenants:acme:TokensPerMinute", "100"));
        var provider = Provider(options);

        var unlisted = provider.Resolve("globex", "k", "m");
        Assert.Equal(5, unlisted.Scopes.Single().Limits.RequestsPerMinute);
        Assert.Equal(2.5m, unlisted.Scopes.Single().Limits.DailyBudgetUsd);
        Assert.Null(provider.Resolve("acme", "k", "m").Scopes.Single().Limits.RequestsPerMinute);
    }

    [Fact]
    public void Resolve_NothingConfigured_NoScopes()
    {
        Assert.Empty(Provider(new RateLimitOptions()).Resolve("acme", "k", "m").Scopes);
    }

    [Fact]
    public void Resolve_NamesWithSeparators_AreEscapedInScopeKeys()
    {
        var options = new RateLimitOptions { Tenants = { ["acme"] = new TenantRateLimitOptions { Models = { ["a:b}{c"] = new RateLimitValues { RequestsPerMinute = 1 } } } } };

        Assert.Equal("m:a%3Ab%7D%7Bc", Provider(options).Resolve("acme", "k", "a:b}{c").Scopes.Single().Key);
    }

    [Fact]
    public void Constructor_InvalidOptions_ThrowsWithEveryProblem()
    {
        var options = Bind(("Store", "memcached"), ("Tenants:acme:RequestsPerMinute", "0"), ("Tenants:acme:Keys:ci:DailyBudgetUsd", "-1"),
            ("Redis:ReplicaCount", "0"));

        var ex = Assert.Throws<GatewayConfigurationException>(() => Provider(options));

        Assert.Equal(4, ex.Problems.Count);
        Assert.Contains(ex.Problems, p => p.Contains("LlmProxy:RateLimits:Store 'memcached'", StringComparison.Ordinal));
        Assert.Contains(ex.Problems, p => p.Contains("Tenants:acme:RequestsPerMinute must be at least 1", StringComparison.Ordinal));
        Assert.Contains(ex.Problems, p => p.Contains("Tenants:acme:Keys:ci:DailyBudgetUsd must not be negative", StringComparison.Ordinal));
        Assert.Contains(ex.Problems, p => p.Contains("ReplicaCount", StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_RedisStoreWithoutConfiguration_IsAProblem()
    {
        var problems = RateLimitOptionsValidator.Collect(Bind(("Store", "redis")));

        Assert.Equal(["LlmProxy:RateLimits:Redis:Configuration is required when LlmProxy:RateLimits:Store is 'redis'."], problems);
    }

    [Theory]
    [InlineData("redis:6379,nosuchoption=1", "not a valid StackExchange.Redis configuration string")]
    [InlineData("password=x", "names no Redis endpoint")]
    public void Validate_BadRedisConfigurationString_IsAProblem(string configuration, string expected)
    {
        var problems = RateLimitOptionsValidator.Collect(Bind(("Store", "redis"), ("Redis:Configuration", configuration)));

        Assert.Contains(expected, Assert.Single(problems), StringComparison.Ordinal);
    }

    [Fact]
    public void Reload_ValidChange_AppliesIt_InvalidChange_KeepsThePreviousLimits()
    {
        var monitor = new MutableOptionsMonitor(Bind(("Tenants:acme:RequestsPerMinute", "10")));
        var provider = Provider(monitor.CurrentValue, monitor);

        monitor.Set(Bind(("Tenants:acme:RequestsPerMinute", "20")));
        Assert.Equal(20, provider.Resolve("acme", "k", "m").Scopes.Single().Limits.RequestsPerMinute);

        monitor.Set(Bind(("Tenants:acme:RequestsPerMinute", "-3")));
        Assert.Equal(20, provider.Resolve("acme", "k", "m").Scopes.Single().Limits.RequestsPerMinute);
    }

    internal sealed class MutableOptionsMonitor(RateLimitOptions value) : IOptionsMonitor<RateLimitOptions>
    {
        private Action<RateLimitOptions, string?>? _listener;

        public RateLimitOptions CurrentValue { get; private set; } = value;

        public RateLimitOptions Get(string? name) => CurrentValue;

        public IDisposable? OnChange(Action<RateLimitOptions, string?> listener)
        {
            _listener += listener;
            return null;
        }

        public void Set(RateLimitOptions options)
        {
            CurrentValue = options;
            _listener?.Invoke(options, null);
        }
    }
}
