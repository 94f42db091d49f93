using System.Collections.Frozen;

namespace LlmProxy.Metering;

/// <summary>
/// The prices of the pricing file, indexed by provider and model name. A model may have several entries with different
/// effective dates: the one in effect at a record's time applies (a record older than every entry of its model uses the
/// earliest). Names are compared without regard to case.
/// </summary>
public sealed class PriceTable
{
    public static readonly PriceTable Empty = new([]);

    private readonly FrozenDictionary<string, ModelPrice[]> _byProviderAndName;
    private readonly FrozenDictionary<string, ModelPrice[]> _byName;

    public PriceTable(IReadOnlyList<ModelPrice> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        Entries = entries;
        _byProviderAndName = entries
            .SelectMany(e => e.Names.Select(name => (Key: ProviderKey(e.Provider, name), Entry: e)))
            .GroupBy(x => x.Key, StringComparer.OrdinalIgnoreCase)
            .ToFrozenDictionary(g => g.Key, g => g.Select(x => x.Entry).OrderByDescending(e => e.EffectiveDate).ToArray(), StringComparer.OrdinalIgnoreCase);
        // Any provider: the entries of the first provider (in file order) that prices the name.
        _byName = entries
            .SelectMany(e => e.Names.Select(name => (Name: name, Entry: e)))
            .GroupBy(x => x.Name, StringComparer.OrdinalIgnoreCase)
            .ToFrozenDictionary(
                g => g.Key,
                g =>
                {
                    var provider = g.First().Entry.Provider;
                    return g.Where(x => string.Equals(x.Entry.Provider, provider, StringComparison.OrdinalIgnoreCase))
                        .Select(x => x.Entry).OrderByDescending(e => e.EffectiveDate).ToArray();
                },
                StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>Every entry, in file order.</summary>
    public IReadOnlyList<ModelPrice> Entries { get; }

    /// <summary>
    /// The price of a request: by the serving provider and the upstream model id first, then the upstream model id at any
    /// provider (an OpenAI-compatible endpoint serving another vendor's model), then the client-facing model name at the
    /// serving provider, then at any provider. Null when none is priced.
    /// </summary>
    public ModelPrice? Find(string? provider, string? upstreamModel, string? requestedModel, DateTimeOffset at)
    {
        var date = DateOnly.FromDateTime(at.UtcDateTime);
        return FindExact(provider, upstreamModel, date)
            ?? FindAny(upstreamModel, date)
            ?? FindExact(provider, requestedModel, date)
            ?? FindAny(requestedModel, date);
    }

    /// <summary>The price in effect on <paramref name="at"/> of a name, optionally written <c>provider/model</c>.</summary>
    public ModelPrice? FindByName(string name, DateTimeOffset at)
    {
        ArgumentNullException.ThrowIfNull(name);
        var date = DateOnly.FromDateTime(at.UtcDateTime);
        if (FindAny(name, date) is { } price)
        {
            return price;
        }
        var slash = name.IndexOf('/', StringComparison.Ordinal);
        return slash > 0 ? FindExact(name[..slash], name[(slash + 1)..], date) : null;
    }

    /// <summary>The entries in effect on <paramref name="at"/>: for each provider and model, the latest effective one.</summary>
    public IReadOnlyList<ModelPrice> Current(DateTimeOffset at)
    {
        var date = DateOnly.FromDateTime(at.UtcDateTime);
        return Entries
            .GroupBy(e => ProviderKey(e.Provider, e.Model), StringComparer.OrdinalIgnoreCase)
            .Select(g => InEffect(g.OrderByDescending(e => e.EffectiveDate).ToArray(), date))
            .ToArray();
    }

    private ModelPrice? FindExact(string? provider, string? name, DateOnly date) =>
        provider is { Length: > 0 } && name is { Length: > 0 } && _byProviderAndName.TryGetValue(ProviderKey(provider, name), out var entries)
            ? InEffect(entries, date)
            : null;

    private ModelPrice? FindAny(string? name, DateOnly date) =>
        name is { Length: > 0 } && _byName.TryGetValue(name, out var entries) ? InEffect(entries, date) : null;

    /// <summary><paramref name="newestFirst"/> is ordered by effective date, newest first.</summary>
    private static ModelPrice InEffect(ModelPrice[] newestFirst, DateOnly date)
    {
        foreach (var entry in newestFirst)
        {
            if (entry.EffectiveDate <= date)
            {
                return entry;
            }
        }
        return newestFirst[^1];
    }

    private static string ProviderKey(string provider, string name) => provider + "\n" + name;
}
