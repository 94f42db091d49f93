namespace LlmProxy.Caching;

/// <summary>
/// The <c>LlmProxy:Cache</c> configuration section: the tenant-keyed response cache. Caching is off unless
/// <see cref="Enabled"/> (or a model or tenant override) turns it on, because answering from a cache changes
/// the sampling semantics clients expect from a model.
/// </summary>
public sealed class ResponseCacheOptions
{
    public const string SectionName = "LlmProxy:Cache";

    /// <summary>
    /// Whether responses are cached for models and tenants that do not say otherwise. The default is false:
    /// an identical request normally samples a new answer, and a cache returns the old one, so caching is opt-in.
    /// </summary>
    public bool Enabled { get; set; }

    /// <summary>How long an entry is served. The default is 1 hour.</summary>
    public TimeSpan Ttl { get; set; } = ResponseCacheDefaults.Ttl;

    /// <summary>Largest response body (a <c>chat.completion</c> JSON) that is stored, in bytes. The default is 1 MiB.</summary>
    public long MaxEntryBytes { get; set; } = ResponseCacheDefaults.MaxEntryBytes;

    /// <summary>Where entries live: <c>memory</c> (per gateway process) or <c>redis</c> (shared). The default is <c>memory</c>.</summary>
    public string Store { get; set; } = ResponseCacheStores.Memory;

    public MemoryResponseCacheOptions Memory { get; set; } = new();

    public RedisResponseCacheOptions Redis { get; set; } = new();

    /// <summary>Per model (client-facing name): overrides of <see cref="Enabled"/>, <see cref="Ttl"/> and <see cref="MaxEntryBytes"/>.</summary>
    public Dictionary<string, ModelResponseCacheOptions> Models { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Per tenant (name): overrides of <see cref="Enabled"/>, <see cref="Ttl"/> and <see cref="MaxEntryBytes"/>, and whether
    /// clients may steer the cache.
    /// </summary>
    public Dictionary<string, TenantResponseCacheOptions> Tenants { get; set; } = new(StringComparer.OrdinalIgnoreCase);
}

public sealed class MemoryResponseCacheOptions
{
    /// <summary>
    /// Upper bound of the bytes held by the in-process store (entries plus keys plus a small per-entry overhead);
    /// the least recently used entries are evicted beyond it. The default is 256 MiB.
    /// </summary>
    public long MaxBytes { get; set; } = ResponseCacheDefaults.MemoryMaxBytes;
}

public sealed class RedisResponseCacheOptions
{
    /// <summary>
    /// StackExchange.Redis configuration string, e.g. <c>redis:6379,password=...,ssl=true</c>. Required when
    /// <see cref="ResponseCacheOptions.Store"/> is <c>redis</c>. Unless the string says otherwise the gateway adds
    /// <c>abortConnect=false</c>, <c>connectTimeout=1000</c> and an <c>asyncTimeout</c> of <see cref="OperationTimeout"/>,
    /// so a dead Redis costs little time. The default is none.
    /// </summary>
    public string? Configuration { get; set; }

    /// <summary>
    /// How long one cache read or write may take before the request goes on without the cache (as a miss).
    /// The default is 500 ms.
    /// </summary>
    public TimeSpan OperationTimeout { get; set; } = ResponseCacheDefaults.RedisOperationTimeout;

    /// <summary>
    /// After a failed Redis operation the gateway stops using Redis for this long, then lets one request probe
    /// it again; each further failure doubles the pause up to <see cref="MaxBackoff"/>. The default is 1 second.
    /// </summary>
    public TimeSpan InitialBackoff { get; set; } = ResponseCacheDefaults.RedisInitialBackoff;

    /// <summary>Longest pause between probes of a failing Redis. The default is 30 seconds.</summary>
    public TimeSpan MaxBackoff { get; set; } = ResponseCacheDefaults.RedisMaxBackoff;
}

public sealed class ModelResponseCacheOptions
{
    /// <summary>Turns caching on or off for this model; unset follows the global <see cref="ResponseCacheOptions.Enabled"/>.</summary>
    public bool? Enabled { get; set; }

    /// <summary>Entry lifetime for this model; unset uses the global TTL.</summary>
    public TimeSpan? Ttl { get; set; }

    /// <summary>Largest stored response for this model; unset uses the global limit.</summary>
    public long? MaxEntryBytes { get; set; }
}

public sealed class TenantResponseCacheOptions
{
    /// <summary>Turns caching on or off for this tenant; unset follows the model's and global settings.</summary>
    public bool? Enabled { get; set; }

    /// <summary>Entry lifetime for this tenant's entries; unset uses the model's or global TTL.</summary>
    public TimeSpan? Ttl { get; set; }

    /// <summary>
    /// Largest stored response for this tenant. When the model sets a limit too, the smaller one applies, so a tenant
    /// can keep its own entries small but cannot store more than a model allows. Unset uses the model's or global limit.
    /// </summary>
    public long? MaxEntryBytes { get; set; }

    /// <summary>
    /// Whether this tenant's clients may steer the cache with <c>Cache-Control: no-cache / no-store</c> and
    /// <c>x-llmproxy-cache-ttl</c>. When false those headers are ignored. The default is true.
    /// </summary>
    public bool AllowClientControls { get; set; } = true;
}

/// <summary>Names accepted by <see cref="ResponseCacheOptions.Store"/>.</summary>
public static class ResponseCacheStores
{
    public const string Memory = "memory";
    public const string Redis = "redis";
}

internal static class ResponseCacheDefaults
{
    public static readonly TimeSpan Ttl = TimeSpan.FromHours(1);
    public const long MaxEntryBytes = 1024 * 1024;
    public const long MemoryMaxBytes = 256L * 1024 * 1024;
    public static readonly TimeSpan RedisOperationTimeout = TimeSpan.FromMilliseconds(500);
    public static readonly TimeSpan RedisInitialBackoff = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan RedisMaxBackoff = TimeSpan.FromSeconds(30);
}
