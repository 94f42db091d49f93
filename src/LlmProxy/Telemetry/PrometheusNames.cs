using System.Collections.Frozen;
using System.Text;

namespace LlmProxy.Telemetry;

/// <summary>
/// Prometheus names for OpenTelemetry-style instruments, after the OpenTelemetry "Prometheus and OpenMetrics
/// compatibility" rules: dots and other invalid characters become underscores, the unit is appended as a
/// word (<c>s</c> becomes <c>_seconds</c>, annotations such as <c>{token}</c> add nothing), and counters
/// end in <c>_total</c>. So <c>gen_ai.client.token.usage</c> ({token}) is <c>gen_ai_client_token_usage</c>
/// and <c>llmproxy.request.duration</c> (s) is <c>llmproxy_request_duration_seconds</c>.
/// </summary>
internal static class PrometheusNames
{
    private static readonly FrozenDictionary<string, string> Units = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["d"] = "days",
        ["h"] = "hours",
        ["min"] = "minutes",
        ["s"] = "seconds",
        ["ms"] = "milliseconds",
        ["us"] = "microseconds",
        ["ns"] = "nanoseconds",
        ["By"] = "bytes",
        ["KiBy"] = "kibibytes",
        ["MiBy"] = "mebibytes",
        ["GiBy"] = "gibibytes",
        ["TiBy"] = "tibibytes",
        ["KBy"] = "kilobytes",
        ["MBy"] = "megabytes",
        ["GBy"] = "gigabytes",
        ["TBy"] = "terabytes",
        ["bit"] = "bits",
        ["m"] = "meters",
        ["V"] = "volts",
        ["A"] = "amperes",
        ["J"] = "joules",
        ["W"] = "watts",
        ["g"] = "grams",
        ["Cel"] = "celsius",
        ["Hz"] = "hertz",
        ["%"] = "percent",
    }.ToFrozenDictionary(StringComparer.Ordinal);

    // After a slash the same letters name a period: "By/s" is bytes_per_second, "{request}/min" is per_minute.
    private static readonly FrozenDictionary<string, string> PerUnits = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["s"] = "second",
        ["m"] = "minute",
        ["min"] = "minute",
        ["h"] = "hour",
        ["d"] = "day",
        ["w"] = "week",
        ["mo"] = "month",
        ["y"] = "year",
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>The Prometheus metric family name of an instrument.</summary>
    public static string MetricName(string instrumentName, string? unit, PrometheusMetricType type)
    {
        var name = Sanitize(instrumentName, allowLeadingDigit: false, leadingDigitPrefix: "_");
        if (type == PrometheusMetricType.Counter && name.EndsWith("_total", StringComparison.Ordinal) && name.Length > "_total".Length)
        {
            name = name[..^"_total".Length];
        }
        if (UnitSuffix(unit, type) is { } suffix && !name.EndsWith("_" + suffix, StringComparison.Ordinal) && name != suffix)
        {
            name = name + "_" + suffix;
        }
        return type == PrometheusMetricType.Counter ? name + "_total" : name;
    }

    /// <summary>
    /// The word a unit adds to a metric name, or null for none. UCUM annotations in braces (<c>{token}</c>)
    /// carry no unit; <c>1</c> makes a gauge a <c>_ratio</c>; unknown units are kept, lower-cased (<c>USD</c> is <c>usd</c>).
    /// </summary>
    public static string? UnitSuffix(string? unit, PrometheusMetricType type)
    {
        if (string.IsNullOrWhiteSpace(unit))
        {
            return null;
        }
        var cleaned = RemoveAnnotations(unit).Trim();
        if (cleaned.Length == 0)
        {
            return null;
        }
        if (cleaned == "1")
        {
            return type == PrometheusMetricType.Gauge ? "ratio" : null;
        }

        var slash = cleaned.IndexOf('/');
        if (slash < 0)
        {
            return Word(Units, cleaned);
        }
        var main = cleaned[..slash].Trim();
        var per = cleaned[(slash + 1)..].Trim();
        var perWord = per.Length == 0 ? null : Word(PerUnits, per);
        var mainWord = main.Length == 0 || main == "1" ? null : Word(Units, main);
        return (mainWord, perWord) switch
        {
            (null, null) => null,
            (null, _) => "per_" + perWord,
            (_, null) => mainWord,
            _ => mainWord + "_per_" + perWord,
        };
    }

    /// <summary>A valid Prometheus label name for a tag key: <c>gen_ai.token.type</c> is <c>gen_ai_token_type</c>.</summary>
    public static string LabelName(string key) => Sanitize(key, allowLeadingDigit: false, leadingDigitPrefix: "key_");

    private static string Word(FrozenDictionary<string, string> known, string unit) =>
        known.TryGetValue(unit, out var word) ? word : Sanitize(unit.ToLowerInvariant(), allowLeadingDigit: true, leadingDigitPrefix: "");

    private static string RemoveAnnotations(string unit)
    {
        if (!unit.Contains('{'))
        {
            return unit;
        }
        var result = new StringBuilder(unit.Length);
        var depth = 0;
        foreach (var c in unit)
        {
            if (c == '{')
            {
                depth++;
            }
            else if (c == '}' && depth > 0)
            {
                depth--;
            }
            else if (depth == 0)
            {
                result.Append(c);
            }
        }
        return result.ToString();
    }

    /// <summary>
    /// Replaces every character outside <c>[a-zA-Z0-9_]</c> with an underscore and collapses runs of underscores
    /// (colons are valid in Prometheus names but reserved for recording rules, so they are replaced too).
    /// </summary>
    private static string Sanitize(string value, bool allowLeadingDigit, string leadingDigitPrefix)
    {
        var result = new StringBuilder(value.Length + leadingDigitPrefix.Length);
        foreach (var c in value)
        {
            var valid = char.IsAsciiLetterOrDigit(c) || c == '_';
            var next = valid ? c : '_';
            if (next == '_' && result.Length > 0 && result[^1] == '_')
            {
                continue;
            }
            result.Append(next);
        }
        if (result.Length == 0)
        {
            return "_";
        }
        if (!allowLeadingDigit && char.IsAsciiDigit(result[0]))
        {
            result.Insert(0, leadingDigitPrefix);
        }
        return result.ToString();
    }
}
