using System.Collections.Frozen;
using LlmProxy.Routing;
using LlmProxy.Tenancy;

namespace LlmProxy.Configuration;

/// <summary>
/// An immutable, validated view of the configuration that requests are served from. A configuration
/// reload builds a new one and swaps it in only if it is valid.
/// </summary>
public sealed class GatewayConfiguration
{
    internal GatewayConfiguration(LlmProxyOptions options, FrozenDictionary<string, TenantIdentity> keysByHash,
        FrozenSet<string> adminKeyHashes, FrozenDictionary<string, ModelRoute> routes, IReadOnlyList<string> warnings)
    {
        Options = options;
        KeysByHash = keysByHash;
        AdminKeyHashes = adminKeyHashes;
        Routes = routes;
        Deployments = routes.Values.SelectMany(r => r.Deployments).ToFrozenDictionary(d => d.Id, StringComparer.Ordinal);
        Warnings = warnings;
    }

    public LlmProxyOptions Options { get; }

    /// <summary>Tenant identities by SHA-256 hex of their API key.</summary>
    public FrozenDictionary<string, TenantIdentity> KeysByHash { get; }

    public FrozenSet<string> AdminKeyHashes { get; }

    /// <summary>Routes by client-facing model name.</summary>
    public FrozenDictionary<string, ModelRoute> Routes { get; }

    /// <summary>Every deployment by id.</summary>
    public FrozenDictionary<string, Deployment> Deployments { get; }

    /// <summary>Things that are allowed but probably not intended (e.g. a deployment disabled for lack of credentials).</summary>
    public IReadOnlyList<string> Warnings { get; }

    public long MaxRequestBodyBytes => Options.MaxRequestBodyBytes;
}
