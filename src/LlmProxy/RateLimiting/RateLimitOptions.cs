namespace LlmProxy.RateLimiting;

/// <summary>
/// The <c>LlmProxy:RateLimits</c> configuration section: per-tenant (and optionally per-key and per-model)
/// request, token, concurrency and spend limits, and where their counters live. Limits are read again
/// when the configuration changes; <see cref="Store"/> and <see cref="Redis"/> are read once at startup.
/// </summary>
public sealed class RateLimitOptions
{
    public const string SectionName = "LlmProxy:RateLimits";

    /// <summary>
    /// Where counters are kept: <c>local</c> (in this process; exact for a single instance) or <c>redis</c>
    /// (shared by every replica through atomic Lua scripts). The default is <c>local</c>.
    /// </summary>
    public string Store { get; set; } = RateLimitStores.Local;

    /// <summary>Settings of the <c>redis</c> store.</summary>
    public RedisRateLimitOptions Redis { get; set; } = new();

    /// <summary>
    /// Limits of every tenant that has no entry in <see cref="Tenants"/>. Each such tenant gets its own counters
    /// with these values. The default is none: unlisted tenants are not limited.
    /// </summary>
    public TenantRateLimitOptions? Default { get; set; }

    /// <summary>
    /// Limits by tenant name (as in <c>LlmProxy:Tenants</c>). A listed tenant gets exactly what its entry says;
    /// <see cref="Default"/> does not fill in values it leaves out.
    /// </summary>
    public Dictionary<string, TenantRateLimitOptions> Tenants { get; set; } = new(StringComparer.OrdinalIgnoreCase);
}

/// <summary>
/// One set of limits. Every value is optional; a value that is not set is not limited. Limits of the tenant,
/// of the key and of the model all apply to a request, each with its own counters; the tightest decides.
/// </summary>
public class RateLimitValues
{
    /// <summary>Requests admitted in any sliding 60-second window. The default is unlimited.</summary>
    public int? RequestsPerMinute { get; set; }

    /// <summary>
    /// Tokens (prompt + completion) in any sliding 60-second window. A request reserves an estimate when it is
    /// admitted and is charged its reported usage when it ends. The default is unlimited.
    /// </summary>
    public int? TokensPerMinute { get; set; }

    /// <summary>Requests in flight at once, streams included until their last byte. The default is unlimited.</summary>
    public int? ConcurrentRequests { get; set; }

    /// <summary>Spend in US dollars per UTC day, from the request cost source. The default is unlimited.</summary>
    public decimal? DailyBudgetUsd { get; set; }

    /// <summary>Spend in US dollars per UTC calendar month, from the request cost source. The default is unlimited.</summary>
    public decimal? MonthlyBudgetUsd { get; set; }

    /// <summary>
    /// Completion tokens reserved for a request that sets neither <c>max_completion_tokens</c> nor <c>max_tokens</c>.
    /// The most specific level that sets it wins (model, then key, then tenant). The default is none: such a request
    /// reserves only its prompt estimate, and its completion is charged when it ends.
    /// </summary>
    public int? DefaultMaxTokens { get; set; }
}

/// <summary>A tenant's limits, with optional limits of its own per API key id and per client-facing model.</summary>
public sealed class TenantRateLimitOptions : RateLimitValues
{
    /// <summary>Limits of one key of the tenant (by key id, as in <c>LlmProxy:Tenants:{tenant}:Keys</c>), on top of the tenant's.</summary>
    public Dictionary<string, RateLimitValues> Keys { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Limits of one model for this tenant (all its keys together), on top of the tenant's.</summary>
    public Dictionary<string, RateLimitValues> Models { get; set; } = new(StringComparer.OrdinalIgnoreCase);
}

public sealed class RedisRateLimitOptions
{
    /// <summary>StackExchange.Redis configuration string, e.g. <c>redis:6379,password=...,ssl=true</c>. Required for the <c>redis</c> store.</summary>
    public string? Configuration { get; set; }

    /// <summary>Prefix of every key the limiter writes. The default is <c>llmproxy:rl:</c>.</summary>
    public string KeyPrefix { get; set; } = "llmproxy:rl:";

    /// <summary>
    /// What happens while Redis cannot be reached: <c>local</c> (each replica falls back to in-process counters with
    /// every limit divided by <see cref="ReplicaCount"/>) or <c>closed</c> (requests are refused with 503
    /// <c>rate_limiter_unavailable</c>). The default is <c>local</c>.
    /// </summary>
    public string FailureMode { get; set; } = RateLimitFailureModes.Local;

    /// <summary>Number of gateway replicas, used to share the limits out during a <c>local</c> fallback. The default is 1.</summary>
    public int ReplicaCount { get; set; } = 1;

    /// <summary>
    /// Whose clock the sliding windows use: <c>server</c> (Redis <c>TIME</c>, one clock for every replica) or
    /// <c>gateway</c> (each replica's clock, passed to the script; replicas must be NTP-synchronized). The default is <c>server</c>.
    /// </summary>
    public string Clock { get; set; } = RateLimitClocks.Server;

    /// <summary>
    /// Longest wait for one Redis round trip before Redis is treated as unreachable: the client's <c>asyncTimeout</c>,
    /// unless <see cref="Configuration"/> sets one. The default is 1 second.
    /// </summary>
    public TimeSpan OperationTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest wait for the first connection to Redis. The default is 5 seconds.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// After a Redis failure, how long the limiter uses its failure mode without trying Redis again, so that a dead
    /// Redis does not cost a timeout on every request. The default is 5 seconds.
    /// </summary>
    public TimeSpan RetryInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Lifetime of a concurrency slot in Redis. Each replica renews the slots of its requests in flight every third of
    /// it, so a replica that dies frees its slots within this time. The default is 30 seconds.
    /// </summary>
    public TimeSpan ConcurrencyLease { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>Names of the counter stores.</summary>
public static class RateLimitStores
{
    public const string Local = "local";
    public const string Redis = "redis";
}

/// <summary>Names of the behaviours while Redis is unreachable.</summary>
public static class RateLimitFailureModes
{
    public const string Local = "local";
    public const string Closed = "closed";
}

/// <summary>Names of the clocks the Redis windows can use.</summary>
public static class RateLimitClocks
{
    public const string Server = "server";
    public const string Gateway = "gateway";
}
