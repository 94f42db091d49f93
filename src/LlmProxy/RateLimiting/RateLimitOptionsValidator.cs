namespace LlmProxy.RateLimiting;

/// <summary>
/// Checks <see cref="RateLimitOptions"/> as a whole and reports every problem at once: at startup (the gateway
/// does not start) and on a configuration change (the change is rejected and the previous limits stay).
/// </summary>
internal static class RateLimitOptionsValidator
{
    public static List<string> Collect(RateLimitOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = new List<string>();
        const string root = RateLimitOptions.SectionName;

        if (options.Store is not (RateLimitStores.Local or RateLimitStores.Redis))
        {
            problems.Add($"{root}:Store '{options.Store}' is unknown; use '{RateLimitStores.Local}' or '{RateLimitStores.Redis}'.");
        }
        var redis = options.Redis ?? new RedisRateLimitOptions();
        if (options.Store == RateLimitStores.Redis && string.IsNullOrWhiteSpace(redis.Configuration))
        {
            problems.Add($"{root}:Redis:Configuration is required when {root}:Store is '{RateLimitStores.Redis}'.");
        }
        else if (options.Store == RateLimitStores.Redis)
        {
            try
            {
                if (StackExchange.Redis.ConfigurationOptions.Parse(redis.Configuration!).EndPoints.Count == 0)
                {
                    problems.Add($"{root}:Redis:Configuration names no Redis endpoint (host:port).");
                }
            }
            catch (ArgumentException ex)
            {
                problems.Add($"{root}:Redis:Configuration is not a valid StackExchange.Redis configuration string: {ex.Message}");
            }
        }
        if (redis.FailureMode is not (RateLimitFailureModes.Local or RateLimitFailureModes.Closed))
        {
            problems.Add($"{root}:Redis:FailureMode '{redis.FailureMode}' is unknown; use '{RateLimitFailureModes.Local}' or '{RateLimitFailureModes.Closed}'.");
        }
        if (redis.Clock is not (RateLimitClocks.Server or RateLimitClocks.Gateway))
        {
            problems.Add($"{root}:Redis:Clock '{redis.Clock}' is unknown; use '{RateLimitClocks.Server}' or '{RateLimitClocks.Gateway}'.");
        }
        if (redis.ReplicaCount < 1)
        {
            problems.Add($"{root}:Redis:ReplicaCount must be at least 1.");
        }
        Positive(problems, $"{root}:Redis:OperationTimeout", redis.OperationTimeout);
        Positive(problems, $"{root}:Redis:ConnectTimeout", redis.ConnectTimeout);
        Positive(problems, $"{root}:Redis:RetryInterval", redis.RetryInterval);
        if (redis.ConcurrencyLease < TimeSpan.FromSeconds(3))
        {
            problems.Add($"{root}:Redis:ConcurrencyLease must be at least 3 seconds.");
        }

        if (options.Default is { } fallback)
        {
            CheckTenant(problems, $"{root}:Default", fallback);
        }
        foreach (var (tenant, limits) in options.Tenants)
        {
            CheckTenant(problems, $"{root}:Tenants:{tenant}", limits);
        }
        return problems;
    }

    private static void CheckTenant(List<string> problems, string path, TenantRateLimitOptions? tenant)
    {
        if (tenant is null)
        {
            return;
        }
        Check(problems, path, tenant);
        foreach (var (key, limits) in tenant.Keys)
        {
            Check(problems, $"{path}:Keys:{key}", limits);
        }
        foreach (var (model, limits) in tenant.Models)
        {
            Check(problems, $"{path}:Models:{model}", limits);
        }
    }

    private static void Check(List<string> problems, string path, RateLimitValues? values)
    {
        if (values is null)
        {
            return;
        }
        AtLeastOne(problems, $"{path}:RequestsPerMinute", values.RequestsPerMinute);
        AtLeastOne(problems, $"{path}:TokensPerMinute", values.TokensPerMinute);
        AtLeastOne(problems, $"{path}:ConcurrentRequests", values.ConcurrentRequests);
        AtLeastOne(problems, $"{path}:DefaultMaxTokens", values.DefaultMaxTokens);
        NotNegative(problems, $"{path}:DailyBudgetUsd", values.DailyBudgetUsd);
        NotNegative(problems, $"{path}:MonthlyBudgetUsd", values.MonthlyBudgetUsd);
    }

    private static void AtLeastOne(List<string> problems, string path, int? value)
    {
        if (value is < 1)
        {
            problems.Add($"{path} must be at least 1 (leave it out for no limit).");
        }
    }

    private static void NotNegative(List<string> problems, string path, decimal? value)
    {
        if (value is < 0)
        {
            problems.Add($"{path} must not be negative (leave it out for no budget; 0 blocks all spending).");
        }
    }

    private static void Positive(List<string> problems, string path, TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
        {
            problems.Add($"{path} must be positive.");
        }
    }
}
