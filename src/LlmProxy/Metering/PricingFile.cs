using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace LlmProxy.Metering;

/// <summary>
/// Reads and validates <c>config/pricing.json</c>:
/// <code>
/// { "currency": "USD",
///   "prices": [ { "provider": "openai", "model": "gpt-4o", "aliases": ["gpt-4o-2024-08-06"],
///                 "input_per_million": 2.50, "cached_input_per_million": 1.25, "output_per_million": 10.00,
///                 "effective_date": "2024-10-02" } ] }
/// </code>
/// Every problem is reported (unknown properties included, so a misspelt price is not silently ignored).
/// </summary>
public static class PricingFile
{
    /// <summary>Prices above this (USD per million tokens) are taken for a typo.</summary>
    public const decimal MaxPricePerMillion = 10_000m;

    public static PriceTable? Parse(string json, string source, out IReadOnlyList<string> errors)
    {
        ArgumentNullException.ThrowIfNull(json);
        var problems = new List<string>();
        errors = problems;
        PricingDocument? document;
        try
        {
            document = JsonSerializer.Deserialize(json, PricingJsonContext.Default.PricingDocument);
        }
        catch (JsonException ex)
        {
            problems.Add($"{source}: not a valid pricing file: {ex.Message}");
            return null;
        }
        if (document is null)
        {
            problems.Add($"{source}: empty pricing file.");
            return null;
        }
        if (!string.Equals(document.Currency ?? "USD", "USD", StringComparison.Ordinal))
        {
            problems.Add($"{source}: currency '{document.Currency}' is not supported; prices are in USD.");
        }
        if (document.Prices is null)
        {
            problems.Add($"{source}: 'prices' is missing.");
            return null;
        }

        var entries = new List<ModelPrice>();
        var seen = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < document.Prices.Count; i++)
        {
            var path = $"{source}: prices[{i}]";
            var entry = document.Prices[i];
            if (entry is null)
            {
                problems.Add($"{path} is null.");
                continue;
            }
            path += entry.Model is { Length: > 0 } ? $" ({entry.Provider}/{entry.Model})" : "";
            var before = problems.Count;
            if (string.IsNullOrWhiteSpace(entry.Provider))
            {
                problems.Add($"{path}: 'provider' is required.");
            }
            if (string.IsNullOrWhiteSpace(entry.Model))
            {
                problems.Add($"{path}: 'model' is required.");
            }
            CheckPrice(problems, path, "input_per_million", entry.InputPerMillion, required: true);
            CheckPrice(problems, path, "output_per_million", entry.OutputPerMillion, required: true);
            CheckPrice(problems, path, "cached_input_per_million", entry.CachedInputPerMillion, required: false);
            if (entry.CachedInputPerMillion > entry.InputPerMillion)
            {
                problems.Add($"{path}: 'cached_input_per_million' is above 'input_per_million'.");
            }
            DateOnly effective = default;
            if (string.IsNullOrWhiteSpace(entry.EffectiveDate))
            {
                problems.Add($"{path}: 'effective_date' is required (yyyy-MM-dd).");
            }
            else if (!DateOnly.TryParseExact(entry.EffectiveDate, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out effective))
            {
                problems.Add($"{path}: 'effective_date' '{entry.EffectiveDate}' is not a date (yyyy-MM-dd).");
            }
            var aliases = entry.Aliases ?? [];
            if (aliases.Any(string.IsNullOrWhiteSpace))
            {
                problems.Add($"{path}: 'aliases' contains an empty name.");
            }
            if (problems.Count > before)
            {
                continue;
            }

            var price = new ModelPrice(entry.Provider!.Trim(), entry.Model!.Trim(), aliases.Select(a => a.Trim()).ToArray(),
                entry.InputPerMillion!.Value, entry.OutputPerMillion!.Value, entry.CachedInputPerMillion, effective);
            foreach (var name in price.Names)
            {
                var key = $"{price.Provider}/{name}@{effective:yyyy-MM-dd}";
                if (seen.TryGetValue(key, out var first))
                {
                    problems.Add($"{path}: '{price.Provider}/{name}' effective {effective:yyyy-MM-dd} is already priced by {first}.");
                }
                else
                {
                    seen[key] = path;
                }
            }
            entries.Add(price);
        }
        return problems.Count == 0 ? new PriceTable(entries) : null;
    }

    public static PriceTable? Load(string path, out IReadOnlyList<string> errors) => Parse(File.ReadAllText(path), path, out errors);

    private static void CheckPrice(List<string> problems, string path, string name, decimal? value, bool required)
    {
        if (value is null)
        {
            if (required)
            {
                problems.Add($"{path}: '{name}' is required (USD per million tokens).");
            }
        }
        else if (value < 0 || value > MaxPricePerMillion)
        {
            problems.Add($"{path}: '{name}' {value} is outside 0..{MaxPricePerMillion} USD per million tokens.");
        }
    }
}

internal sealed class PricingDocument
{
    public string? Currency { get; set; }
    public string? Notes { get; set; }
    public List<PriceEntryDocument?>? Prices { get; set; }
}

internal sealed class PriceEntryDocument
{
    public string? Provider { get; set; }
    public string? Model { get; set; }
    public List<string>? Aliases { get; set; }
    public decimal? InputPerMillion { get; set; }
    public decimal? CachedInputPerMillion { get; set; }
    public decimal? OutputPerMillion { get; set; }
    public string? EffectiveDate { get; set; }
    public string? Notes { get; set; }
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    ReadCommentHandling = JsonCommentHandling.Skip,
    AllowTrailingCommas = true,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow)]
[JsonSerializable(typeof(PricingDocument))]
internal sealed partial class PricingJsonContext : JsonSerializerContext;
