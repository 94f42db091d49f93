using System.Text;
using System.Text.RegularExpressions;
using LlmProxy.Testing;

namespace LlmProxy.IntegrationTests.OpenAiApi;

/// <summary>
/// Every error code the gateway can put in <c>{"error":{"code"}}</c> is in the README's Errors table, so a client author can
/// look up any code they receive. The codes are read from the source: the code argument of each <c>new OpenAiError(...)</c>
/// and of the helpers that build one (<c>BadRequest</c>, <c>TooMany</c>, <c>Reject</c>), string literals and string constants alike.
/// </summary>
public sealed partial class ErrorCodesDocumentedTests
{
    /// <summary>Calls that carry an error code, and the (0-based) position of the code among their arguments.</summary>
    private static readonly Dictionary<string, int> CodeArgument = new(StringComparer.Ordinal)
    {
        ["new OpenAiError"] = 3,
        ["BadRequest"] = 2,
        ["TooMany"] = 2,
        ["Reject"] = 2,
    };

    [Fact]
    public void ErrorsTable_ListsEveryCodeTheSourceEmits()
    {
        var emitted = CodesInSource(RepositoryFiles.PathOf("src/LlmProxy"));
        var documented = Backticked(ErrorsSection(File.ReadAllText(RepositoryFiles.PathOf("README.md"))));

        // The scan must see codes of every kind, or a broken scan would pass this test on nothing.
        Assert.Superset(new HashSet<string> { "invalid_api_key", "upstream_unavailable", "rate_limit_exceeded", "budget_exceeded", "unsupported_parameter", "upstream_stream_interrupted" }, emitted);
        var missing = emitted.Where(code => !documented.Contains(code)).Order(StringComparer.Ordinal).ToList();
        Assert.True(missing.Count == 0, "README ### Errors does not list: " + string.Join(", ", missing));
    }

    private static HashSet<string> CodesInSource(string directory)
    {
        var sources = Directory.EnumerateFiles(directory, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Select(File.ReadAllText)
            .ToList();
        // Constants by name; a name used in several classes maps to all their values.
        var constants = sources.SelectMany(s => ConstantString().Matches(s)).ToLookup(m => m.Groups[1].Value, m => m.Groups[2].Value, StringComparer.Ordinal);
        var codes = new HashSet<string>(StringComparer.Ordinal);
        foreach (var source in sources)
        {
            foreach (Match call in CodeCall().Matches(source))
            {
                var arguments = Arguments(source, call.Index + call.Length);
                var named = arguments.FirstOrDefault(a => a.StartsWith("code:", StringComparison.Ordinal));
                var position = CodeArgument[call.Groups[1].Value];
                var argument = named ?? (arguments.Count > position ? arguments[position] : null);
                if (argument is null)
                {
                    continue;
                }
                foreach (Match literal in StringLiteral().Matches(argument))
                {
                    codes.Add(literal.Groups[1].Value);
                }
                foreach (Match identifier in Identifier().Matches(argument))
                {
                    codes.UnionWith(constants[identifier.Value].Where(v => CodeShape().IsMatch(v)));
                }
            }
        }
        return codes;
    }

    /// <summary>The top-level arguments of the call whose opening parenthesis ends at <paramref name="start"/>.</summary>
    private static List<string> Arguments(string source, int start)
    {
        var arguments = new List<string>();
        var current = new StringBuilder();
        var depth = 0;
        for (var i = start; i < source.Length;)
        {
            var c = source[i];
            if (c is '"' or '\'' or '$' or '@' && LiteralEnd(source, i) is var end and > 0)
            {
                // Copy a literal whole, so that parentheses and commas inside it do not count.
                current.Append(source, i, end - i);
                i = end;
                continue;
            }
            if (c == '/' && i + 1 < source.Length && source[i + 1] == '/')
            {
                i = source.IndexOf('\n', i) is var eol and >= 0 ? eol : source.Length;
                continue;
            }
            if (c is '(' or '[' or '{')
            {
                depth++;
            }
            else if (c is ')' or ']' or '}')
            {
                if (depth == 0)
                {
                    arguments.Add(current.ToString().Trim());
                    return arguments;
                }
                depth--;
            }
            else if (c == ',' && depth == 0)
            {
                arguments.Add(current.ToString().Trim());
                current.Clear();
                i++;
                continue;
            }
            current.Append(c);
            i++;
        }
        return arguments;
    }

    /// <summary>
    /// The index just past the string or char literal starting at <paramref name="i"/> (prefixes <c>$</c> and <c>@</c>, raw
    /// <c>"""</c> strings and interpolation holes with literals of their own included), or -1 when none starts there.
    /// </summary>
    private static int LiteralEnd(string s, int i)
    {
        if (s[i] == '\'')
        {
            var j = i + 1;
            while (j < s.Length && s[j] != '\'')
            {
                j += s[j] == '\\' ? 2 : 1;
            }
            return j + 1;
        }
        var quote = i;
        while (quote < s.Length && s[quote] is '$' or '@')
        {
            quote++;
        }
        if (quote >= s.Length || s[quote] != '"')
        {
            return -1;
        }
        var prefix = s.AsSpan(i, quote - i);
        var interpolated = prefix.Contains('$');
        var verbatim = prefix.Contains('@');
        if (s.AsSpan(quote).StartsWith("\"\"\""))
        {
            var close = s.IndexOf("\"\"\"", quote + 3, StringComparison.Ordinal);
            return close < 0 ? s.Length : close + 3;
        }
        for (var j = quote + 1; j < s.Length; j++)
        {
            switch (s[j])
            {
                case '\\' when !verbatim:
                    j++;
                    break;
                case '"' when verbatim && j + 1 < s.Length && s[j + 1] == '"':
                    j++;
                    break;
                case '"':
                    return j + 1;
                case '{' when interpolated && j + 1 < s.Length && s[j + 1] == '{':
                    j++;
                    break;
                case '{' when interpolated:
                    j = HoleEnd(s, j + 1) - 1;
                    break;
            }
        }
        return s.Length;
    }

    /// <summary>The index just past the <c>}</c> closing an interpolation hole whose content starts at <paramref name="i"/>.</summary>
    private static int HoleEnd(string s, int i)
    {
        var depth = 0;
        while (i < s.Length)
        {
            if (s[i] is '"' or '\'' or '$' or '@' && LiteralEnd(s, i) is var end and > 0)
            {
                i = end;
                continue;
            }
            if (s[i] == '{')
            {
                depth++;
            }
            else if (s[i] == '}' && depth-- == 0)
            {
                return i + 1;
            }
            i++;
        }
        return s.Length;
    }

    private static string ErrorsSection(string readme)
    {
        var start = readme.IndexOf("\n### Errors\n", StringComparison.Ordinal);
        Assert.True(start >= 0, "README has no '### Errors' section");
        var end = NextHeading().Match(readme, start + 1);
        return end.Success ? readme[start..end.Index] : readme[start..];
    }

    private static HashSet<string> Backticked(string text) =>
        Backtick().Matches(text).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);

    [GeneratedRegex(@"(new OpenAiError|\bBadRequest|\bTooMany|\bReject)\(")]
    private static partial Regex CodeCall();

    [GeneratedRegex(@"const string (\w+) = ""([^""]*)"";")]
    private static partial Regex ConstantString();

    [GeneratedRegex(@"(?<![\w$])""([a-z][a-z0-9]*(?:_[a-z0-9]+)+)""")]
    private static partial Regex StringLiteral();

    [GeneratedRegex(@"\b[A-Z]\w*\b")]
    private static partial Regex Identifier();

    [GeneratedRegex(@"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")]
    private static partial Regex CodeShape();

    [GeneratedRegex(@"\n#{2,3} ")]
    private static partial Regex NextHeading();

    [GeneratedRegex(@"`([^`]+)`")]
    private static partial Regex Backtick();
}
