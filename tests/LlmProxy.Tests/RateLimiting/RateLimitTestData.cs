using LlmProxy.RateLimiting;

namespace LlmProxy.Tests.RateLimiting;

/// <summary>Scopes and requests for store tests.</summary>
internal static class RateLimitTestData
{
    public const string TenantName = "acme";

    public static RateLimitScope Tenant(int? rpm = null, int? tpm = null, int? concurrency = null, decimal? daily = null, decimal? monthly = null) =>
        new(RateLimitScope.TenantKey, RateLimitLevel.Tenant, TenantName, new ScopeLimits(rpm, tpm, concurrency, daily, monthly));

    public static RateLimitScope Key(string name, int? rpm = null, int? tpm = null, int? concurrency = null, decimal? daily = null) =>
        new(RateLimitScope.KeyFor(RateLimitLevel.Key, name), RateLimitLevel.Key, name, new ScopeLimits(rpm, tpm, concurrency, daily, null));

    public static RateLimitScope Model(string name, int? rpm = null, int? tpm = null, int? concurrency = null) =>
        new(RateLimitScope.KeyFor(RateLimitLevel.Model, name), RateLimitLevel.Model, name, new ScopeLimits(rpm, tpm, concurrency, null, null));

    public static RateLimitRequest Request(TimeProvider time, long tokens, params RateLimitScope[] scopes) =>
        new(TenantName, Guid.NewGuid().ToString("N"), scopes, tokens, BudgetPeriods.At(time.GetUtcNow()));
}
