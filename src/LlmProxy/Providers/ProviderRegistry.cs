using System.Collections.Frozen;

namespace LlmProxy.Providers;

/// <summary>The registered <see cref="IChatProvider"/>s by name, resolved once at startup.</summary>
public sealed class ProviderRegistry
{
    private readonly FrozenDictionary<string, IChatProvider> _providers;

    public ProviderRegistry(IEnumerable<IChatProvider> providers)
    {
        _providers = providers.ToFrozenDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);
    }

    public IEnumerable<string> Names => _providers.Keys.Order(StringComparer.Ordinal);

    public bool TryGet(string name, out IChatProvider provider) => _providers.TryGetValue(name, out provider!);
}
