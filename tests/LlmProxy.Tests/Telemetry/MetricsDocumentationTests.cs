using System.Text;
using System.Text.RegularExpressions;
using LlmProxy.Testing;
using Xunit;

namespace LlmProxy.Tests.Telemetry;

/// <summary>
/// The metric lists kept outside the code (the README's table, the names the dashboard and alert checks accept) are
/// compared with what the gateway exposes after every instrument has been exercised, so neither can drift from the code.
/// </summary>
public sealed partial class MetricsDocumentationTests
{
    [Fact]
    public void ReadmeMetricTable_ComparedWithAScrapeOfEveryInstrument_ListsEachFamilyWithItsTypeAndLabels()
    {
        var exposed = ExposedFamilies();

        var documented = ReadmeMetricTable(File.ReadAllText(RepositoryFiles.PathOf("README.md")));

        Assert.Equal(Describe(exposed), Describe(GatewayOnly(documented)));
    }

    [Fact]
    public void ObservabilityConfigCheck_GatewayMetricsList_IsEverySeriesTheGatewayExposes()
    {
        var expected = new Dictionary<string, (string Type, SortedSet<string> Labels)>(StringComparer.Ordinal);
        foreach (var (family, (type, labels)) in ExposedFamilies())
        {
            if (type == "histogram")
            {
                // Queries see a histogram as three counters; only _bucket has le.
                expected[family + "_bucket"] = ("counter", new SortedSet<string>(labels.Append("le"), StringComparer.Ordinal));
                expected[family + "_sum"] = ("counter", labels);
                expected[family + "_count"] = ("counter", labels);
            }
            else
            {
                expected[family] = (type, labels);
            }
        }

        var listed = GatewayMetricsOfCheckScript(File.ReadAllText(RepositoryFiles.PathOf("tests/scripts/check-observability-config.sh")));

        Assert.Equal(Describe(expected), Describe(GatewayOnly(listed)));
    }

    [Fact]
    public void ReadmeMetricTable_ParsesNamesTypesAndLabelsWithoutTheirNotes()
    {
        const string Readme = """
            ## Observability

            ### Metrics

            | metric | type | labels | meaning |
            | --- | --- | --- | --- |
            | `a_total` | counter | tenant, result (hit/miss) | a |
            | `b_bytes`, `c_bytes` | gauge | | b and c |

            ### Logs
            | metric | type | labels | meaning |
            | `not_this` | gauge | | outside the Metrics section |
            """;

        var table = ReadmeMetricTable(Readme);

        Assert.Equal(["a_total counter result,tenant", "b_bytes gauge -", "c_bytes gauge -"], Describe(table));
    }

    /// <summary>
    /// The gateway's own families (meter <c>LlmProxy</c>). The ASP.NET Core and runtime families listed beside them come
    /// from instrumentation libraries; MetricsScrapeTests in the integration tests checks those against a real scrape.
    /// </summary>
    private static Dictionary<string, (string Type, SortedSet<string> Labels)> GatewayOnly(Dictionary<string, (string Type, SortedSet<string> Labels)> families) =>
        families.Where(f => IsGatewayFamily(f.Key)).ToDictionary(StringComparer.Ordinal);

    private static bool IsGatewayFamily(string name) =>
        name.StartsWith("llmproxy_", StringComparison.Ordinal) || name.StartsWith("gen_ai_", StringComparison.Ordinal);

    /// <summary>Family name to type and label names (le excepted), from a scrape after every instrument recorded something.</summary>
    private static Dictionary<string, (string Type, SortedSet<string> Labels)> ExposedFamilies()
    {
        using var services = new TelemetryServices();
        GatewayMetricsExercise.RecordEverything(services);
        var scrape = services.Scrape();

        var families = scrape.Types.Where(t => IsGatewayFamily(t.Key)).ToDictionary(t => t.Key, t => (t.Value, new SortedSet<string>(StringComparer.Ordinal)), StringComparer.Ordinal);
        foreach (var key in scrape.SampleKeys)
        {
            var brace = key.IndexOf('{');
            var sample = brace < 0 ? key : key[..brace];
            if (!IsGatewayFamily(sample))
            {
                continue;
            }
            var family = families.ContainsKey(sample) ? sample : Regex.Replace(sample, "_(bucket|sum|count)$", "");
            Assert.True(families.ContainsKey(family), $"sample {key} belongs to no family");
            if (brace >= 0)
            {
                families[family].Item2.UnionWith(LabelNames(key[(brace + 1)..^1]).Where(l => l != "le"));
            }
        }
        return families;
    }

    /// <summary>The label names of a sample's label text (<c>a="x",b="y \"quoted\""</c>), read past escaped quotes.</summary>
    private static IEnumerable<string> LabelNames(string labels)
    {
        var names = new List<string>();
        var i = 0;
        while (i < labels.Length)
        {
            var equals = labels.IndexOf('=', i);
            names.Add(labels[i..equals]);
            i = equals + 2; // past ="
            while (labels[i] != '"')
            {
                i += labels[i] == '\\' ? 2 : 1;
            }
            i += 2; // past the closing quote and the comma
        }
        return names;
    }

    /// <summary>The rows of the metric table under README "## Observability" / "### Metrics": every backticked name of a row has its type and labels.</summary>
    private static Dictionary<string, (string Type, SortedSet<string> Labels)> ReadmeMetricTable(string readme)
    {
        var section = Regex.Match(readme, @"^## Observability\s*$.*?^### Metrics\s*$(?<body>.*?)(?=^##)", RegexOptions.Multiline | RegexOptions.Singleline);
        Assert.True(section.Success, "README has no ## Observability / ### Metrics section");
        var rows = new Dictionary<string, (string, SortedSet<string>)>(StringComparer.Ordinal);
        var inTable = false;
        foreach (var line in section.Groups["body"].Value.Split('\n').Select(l => l.Trim()))
        {
            if (line.StartsWith("| metric | type | labels |", StringComparison.Ordinal))
            {
                inTable = true;
                continue;
            }
            if (!inTable || line.StartsWith("| ---", StringComparison.Ordinal))
            {
                continue;
            }
            if (!line.StartsWith('|'))
            {
                break;
            }
            var cells = line.Trim('|').Split('|').Select(c => c.Trim()).ToArray();
            // A label may carry a note in parentheses: "gen_ai_token_type (input/output)".
            var labels = cells[2].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(l => Regex.Replace(l, @"\s*\(.*\)$", ""));
            foreach (Match name in BacktickedName().Matches(cells[0]))
            {
                Assert.True(rows.TryAdd(name.Groups[1].Value, (cells[1], new SortedSet<string>(labels, StringComparer.Ordinal))), $"{name.Value} is listed twice");
            }
        }
        Assert.True(rows.Count > 0, "README ### Metrics has no metric table");
        return rows;
    }

    /// <summary>The <c>GATEWAY_METRICS</c> list of the script: one series a line, "name type label...".</summary>
    private static Dictionary<string, (string Type, SortedSet<string> Labels)> GatewayMetricsOfCheckScript(string script)
    {
        var list = Regex.Match(script, @"^GATEWAY_METRICS=\$\(cat <<'EOF'\n(?<body>.*?)^EOF$", RegexOptions.Multiline | RegexOptions.Singleline);
        Assert.True(list.Success, "no GATEWAY_METRICS heredoc in check-observability-config.sh");
        var series = new Dictionary<string, (string, SortedSet<string>)>(StringComparer.Ordinal);
        foreach (var line in list.Groups["body"].Value.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(series.TryAdd(fields[0], (fields[1], new SortedSet<string>(fields[2..], StringComparer.Ordinal))), $"{fields[0]} is listed twice");
        }
        return series;
    }

    /// <summary>One sorted line per name, "name type label,label" (or "-"), so a difference shows as a readable line.</summary>
    private static List<string> Describe(Dictionary<string, (string Type, SortedSet<string> Labels)> families) =>
        families.Select(f => new StringBuilder(f.Key).Append(' ').Append(f.Value.Type).Append(' ')
                .Append(f.Value.Labels.Count == 0 ? "-" : string.Join(',', f.Value.Labels)).ToString())
            .Order(StringComparer.Ordinal)
            .ToList();

    [GeneratedRegex("`([a-zA-Z_:][a-zA-Z0-9_:]*)`")]
    private static partial Regex BacktickedName();
}
