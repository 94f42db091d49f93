using System.Collections.Frozen;

namespace LlmProxy.Tenancy;

/// <summary>A tenant as the gateway sees it after configuration has been validated.</summary>
public sealed class Tenant
{
    private readonly FrozenSet<string>? _allowedModels;

    public Tenant(string name, IEnumerable<string>? allowedModels)
    {
        Name = name;
        var allowed = allowedModels?.ToArray() ?? [];
        _allowedModels = allowed.Length == 0 ? null : allowed.ToFrozenSet(StringComparer.Ordinal);
    }

    public string Name { get; }

    /// <summary>Whether this tenant may call <paramref name="model"/>. A tenant with no allow-list may call every model.</summary>
    public bool Allows(string model) => _allowedModels is null || _allowedModels.Contains(model);
}

/// <summary>The identity a request authenticated as: its tenant and which of the tenant's keys it used.</summary>
/// <param name="KeyId">The configured id of the key, safe to log; never the key itself.</param>
public sealed record TenantIdentity(Tenant Tenant, string KeyId);

/// <summary>Per-request feature set by <see cref="TenantAuthenticationMiddleware"/>.</summary>
public interface ITenantFeature
{
    TenantIdentity Identity { get; }
}

internal sealed class TenantFeature(TenantIdentity identity) : ITenantFeature
{
    public TenantIdentity Identity { get; } = identity;
}
