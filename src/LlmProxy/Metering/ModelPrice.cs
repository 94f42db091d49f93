namespace LlmProxy.Metering;

/// <summary>
/// The price of one model at one provider from <see cref="EffectiveDate"/> on, in USD per million tokens.
/// </summary>
/// <param name="Provider">The name of the provider serving it, as a deployment's <c>Provider</c> setting gives it.</param>
/// <param name="Model">The provider's model id, e.g. <c>gpt-4o</c> or <c>anthropic.claude-3-haiku-20240307-v1:0</c>.</param>
/// <param name="Aliases">Other names of the same model at the same price: dated snapshots, cross-region inference profiles, short names.</param>
/// <param name="CachedInputPerMillion">Price of prompt tokens read from the provider's prompt cache; null when the provider has no discount (the input price applies).</param>
public sealed record ModelPrice(
    string Provider,
    string Model,
    IReadOnlyList<string> Aliases,
    decimal InputPerMillion,
    decimal OutputPerMillion,
    decimal? CachedInputPerMillion,
    DateOnly EffectiveDate)
{
    /// <summary>What a cached prompt token costs per million: the cached price, or the input price when there is none.</summary>
    public decimal EffectiveCachedInputPerMillion => CachedInputPerMillion ?? InputPerMillion;

    /// <summary>The model id and every alias.</summary>
    public IEnumerable<string> Names => Aliases.Prepend(Model);
}

/// <summary>Cost of a token mix at a price. All arithmetic is in <see cref="decimal"/>, so sums of costs are exact.</summary>
public static class CostCalculator
{
    private const decimal Million = 1_000_000m;

    /// <summary>
    /// Cost in USD of <paramref name="promptTokens"/> prompt tokens, of which <paramref name="cachedTokens"/> were read from the
    /// provider's prompt cache (OpenAI counts them inside the prompt tokens), and <paramref name="completionTokens"/> output tokens.
    /// </summary>
    public static decimal Compute(ModelPrice price, long promptTokens, long completionTokens, long cachedTokens = 0)
    {
        ArgumentNullException.ThrowIfNull(price);
        ArgumentOutOfRangeException.ThrowIfNegative(promptTokens);
        ArgumentOutOfRangeException.ThrowIfNegative(completionTokens);
        ArgumentOutOfRangeException.ThrowIfNegative(cachedTokens);
        var cached = Math.Min(cachedTokens, promptTokens);
        var uncached = promptTokens - cached;
        return (uncached * price.InputPerMillion + cached * price.EffectiveCachedInputPerMillion + completionTokens * price.OutputPerMillion) / Million;
    }

    /// <summary>A cost without trailing zeros (<c>0.001500</c> becomes <c>0.0015</c>), for display.</summary>
    public static decimal Normalize(decimal value) => value / 1.000000000000000000000000000000000m;
}
