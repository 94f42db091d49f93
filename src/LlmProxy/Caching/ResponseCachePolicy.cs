using System.Collections.Frozen;
using Microsoft.Extensions.Options;

namespace LlmProxy.Caching;

/// <summary>What the cache does for one request's tenant and model.</summary>
/// <param name="Enabled">Whether the request is looked up and its response stored at all.</param>
/// <param name="Ttl">Lifetime of a stored entry; a client's <c>x-llmproxy-cache-ttl</c> can only shorten it.</param>
/// <param name="MaxEntryBytes">Responses larger than this are not stored.</param>
/// <param name="AllowClientControls">Whether the client's cache headers are honoured.</param>
internal readonly record struct ResponseCachePolicy(bool Enabled, TimeSpan Ttl, long MaxEntryBytes, bool AllowClientControls)
{
    public static readonly ResponseCachePolicy Disabled = new(false, TimeSpan.Zero, 0, false);
}

/// <summary>
/// Resolves the policy of a (tenant, model) pair from <see cref="ResponseCacheOptions"/>, following configuration reloads.
/// <list type="bullet">
/// <item>Enabled: an explicit <c>false</c> on the model or the tenant wins; otherwise an explicit <c>true</c> on either
/// turns caching on; otherwise the global <c>Enabled</c> decides.</item>
/// <item>TTL: the shorter of the model's and the tenant's TTL where set; the global TTL when neither is set.</item>
/// <item>MaxEntryBytes: likewise the smaller of the model's and the tenant's limit where set; the global limit when neither is set.</item>
/// </list>
/// </summary>
internal sealed class ResponseCachePolicyProvider
{
    private volatile Snapshot _snapshot;

    public ResponseCachePolicyProvider(IOptionsMonitor<ResponseCacheOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _snapshot = new Snapshot(options.CurrentValue);
        options.OnChange(changed => _snapshot = new Snapshot(changed));
    }

    internal ResponseCachePolicyProvider(ResponseCacheOptions options) => _snapshot = new Snapshot(options);

    public ResponseCachePolicy Resolve(string tenant, string model) => _snapshot.Resolve(tenant, model);

    private sealed class Snapshot
    {
        private readonly ResponseCacheOptions _global;
        private readonly FrozenDictionary<string, ModelResponseCacheOptions> _models;
        private readonly FrozenDictionary<string, TenantResponseCacheOptions> _tenants;
        private readonly bool _anyEnabled;

        public Snapshot(ResponseCacheOptions options)
        {
            _global = options;
            // Configuration keys are case-insensitive; so are these lookups, whatever comparer the binder used.
            _models = options.Models.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);
            _tenants = options.Tenants.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);
            _anyEnabled = options.Enabled || _models.Values.Any(m => m.Enabled == true) || _tenants.Values.Any(t => t.Enabled == true);
        }

        public ResponseCachePolicy Resolve(string tenant, string model)
        {
            if (!_anyEnabled)
            {
                return ResponseCachePolicy.Disabled;
            }
            _models.TryGetValue(model, out var m);
            _tenants.TryGetValue(tenant, out var t);

            var enabled = m?.Enabled == false || t?.Enabled == false
                ? false
                : m?.Enabled == true || t?.Enabled == true || _global.Enabled;
            if (!enabled)
            {
                return ResponseCachePolicy.Disabled;
            }

            var ttl = (m?.Ttl, t?.Ttl) switch
            {
                ({ } mt, { } tt) => mt < tt ? mt : tt,
                ({ } mt, null) => mt,
                (null, { } tt) => tt,
                _ => _global.Ttl,
            };
            var maxEntryBytes = (m?.MaxEntryBytes, t?.MaxEntryBytes) switch
            {
                ({ } mb, { } tb) => Math.Min(mb, tb),
                ({ } mb, null) => mb,
                (null, { } tb) => tb,
                _ => _global.MaxEntryBytes,
            };
            return new ResponseCachePolicy(true, ttl, maxEntryBytes, t?.AllowClientControls ?? true);
        }
    }
}
