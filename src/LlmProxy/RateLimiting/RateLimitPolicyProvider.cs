using System.Collections.Concurrent;
using LlmProxy.Configuration;
using Microsoft.Extensions.Options;

namespace LlmProxy.RateLimiting;

/// <summary>What applies to one (tenant, key, model): the scopes that have limits, and the completion reservation.</summary>
internal sealed record RateLimitPolicy(IReadOnlyList<RateLimitScope> Scopes, int? DefaultMaxTokens)
{
    public static readonly RateLimitPolicy None = new([], null);

    public bool LimitsTokens => Scopes.Any(s => s.Limits.TokensPerMinute is not null);

    public bool HasBudget => Scopes.Any(s => s.Limits.HasBudget);
}

/// <summary>
/// Turns <see cref="RateLimitOptions"/> into the scopes of a request. Invalid options stop startup with every problem
/// listed; a configuration change is validated first, and an invalid one is logged and ignored, so the last valid
/// limits stay in force.
/// </summary>
internal sealed partial class RateLimitPolicyProvider : IDisposable
{
    private readonly IDisposable? _subscription;
    private readonly ILogger<RateLimitPolicyProvider> _logger;
    private Snapshot _current;

    public RateLimitPolicyProvider(IOptionsMonitor<RateLimitOptions> options, ILogger<RateLimitPolicyProvider> logger)
    {
        _logger = logger;
        var problems = RateLimitOptionsValidator.Collect(options.CurrentValue);
        if (problems.Count > 0)
        {
            throw new GatewayConfigurationException(problems);
        }
        _current = new Snapshot(options.CurrentValue);
        _subscription = options.OnChange(Reload);
    }

    /// <summary>Raised after new limits are in force.</summary>
    public event Action? Changed;

    public RateLimitPolicy Resolve(string tenant, string keyId, string? model) => Volatile.Read(ref _current).Resolve(tenant, keyId, model);

    /// <summary>Tenant-level daily and monthly budgets of the tenants listed in configuration, for the budget gauges.</summary>
    public IEnumerable<(string Tenant, decimal? Daily, decimal? Monthly)> ConfiguredTenantBudgets() =>
        Volatile.Read(ref _current).Options.Tenants
            .Where(t => t.Value is { } v && (v.DailyBudgetUsd is not null || v.MonthlyBudgetUsd is not null))
            .Select(t => (t.Key, t.Value.DailyBudgetUsd, t.Value.MonthlyBudgetUsd));

    private void Reload(RateLimitOptions options, string? name)
    {
        var problems = RateLimitOptionsValidator.Collect(options);
        if (problems.Count > 0)
        {
            LogReloadRejected(_logger, problems.Count, string.Join(Environment.NewLine, problems));
            return;
        }
        Volatile.Write(ref _current, new Snapshot(options));
        LogReloaded(_logger, options.Tenants.Count);
        Changed?.Invoke();
    }

    public void Dispose() => _subscription?.Dispose();

    private sealed class Snapshot(RateLimitOptions options)
    {
        private readonly ConcurrentDictionary<(string Tenant, string Key, string? Model), RateLimitPolicy> _resolved = new();

        public RateLimitOptions Options { get; } = options;

        // Tenants, keys and models are all known to the gateway (authenticated and routed) by the time a request is
        // limited, so the cache is bounded by the configuration.
        public RateLimitPolicy Resolve(string tenant, string keyId, string? model) =>
            _resolved.GetOrAdd((tenant, keyId, model), static (k, self) => self.Build(k.Tenant, k.Key, k.Model), this);

        private RateLimitPolicy Build(string tenant, string keyId, string? model)
        {
            var entry = Options.Tenants.TryGetValue(tenant, out var listed) ? listed : Options.Default;
            if (entry is null)
            {
                return RateLimitPolicy.None;
            }
            var scopes = new List<RateLimitScope>(3);
            int? maxTokens = entry.DefaultMaxTokens;
            Add(scopes, RateLimitLevel.Tenant, tenant, entry);
            if (entry.Keys.TryGetValue(keyId, out var key) && key is not null)
            {
                Add(scopes, RateLimitLevel.Key, keyId, key);
                maxTokens = key.DefaultMaxTokens ?? maxTokens;
            }
            if (model is not null && entry.Models.TryGetValue(model, out var perModel) && perModel is not null)
            {
                Add(scopes, RateLimitLevel.Model, model, perModel);
                maxTokens = perModel.DefaultMaxTokens ?? maxTokens;
            }
            return scopes.Count == 0 ? RateLimitPolicy.None : new RateLimitPolicy(scopes, maxTokens);
        }

        private static void Add(List<RateLimitScope> scopes, RateLimitLevel level, string name, RateLimitValues values)
        {
            var limits = ScopeLimits.From(values);
            if (!limits.IsEmpty)
            {
                scopes.Add(new RateLimitScope(RateLimitScope.KeyFor(level, name), level, name, limits));
            }
        }
    }

    [LoggerMessage(EventId = 5102, Level = LogLevel.Error, Message = "Rate limit configuration change rejected, keeping the previous limits. {Count} problem(s):\n{Problems}")]
    private static partial void LogReloadRejected(ILogger logger, int count, string problems);

    [LoggerMessage(EventId = 5101, Level = LogLevel.Information, Message = "Rate limits reloaded: {Tenants} tenant(s) configured")]
    private static partial void LogReloaded(ILogger logger, int tenants);
}
