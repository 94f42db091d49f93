using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using LlmProxy.Providers;
using LlmProxy.Testing;

namespace LlmProxy.Tests.Providers;

/// <summary>
/// A provider is one folder plus one registration line: every folder under <c>src/LlmProxy/Providers/</c> holds its
/// provider whole, registers it with a public <c>Add{Name}Provider(this IServiceCollection)</c>, and nothing outside
/// the folder knows it, except the composition root calling that method. Read from the source tree, so a failure
/// lists every file and name that breaks the rule.
/// </summary>
public sealed partial class ProviderFolderTests
{
    private const string SourceRoot = "src/LlmProxy";
    private const string ProvidersFolder = SourceRoot + "/Providers";
    private const string CompositionRoot = SourceRoot + "/Hosting/LlmProxyServiceCollectionExtensions.cs";

    public static TheoryData<string> ProviderFolders()
    {
        var data = new TheoryData<string>();
        foreach (var folder in Directory.GetDirectories(RepositoryFiles.PathOf(ProvidersFolder)).Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetFileName(folder));
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(ProviderFolders))]
    public void ProviderFolder_SourceOutsideIt_NamesNoneOfItsTypesNamespacesOrProviderName(string folder)
    {
        var provider = Describe(folder);
        var violations = new List<string>();
        foreach (var file in Directory.EnumerateFiles(RepositoryFiles.PathOf(SourceRoot), "*.cs", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(RepositoryFiles.Root, file).Replace(Path.DirectorySeparatorChar, '/');
            if (relative.StartsWith($"{ProvidersFolder}/{folder}/", StringComparison.Ordinal) || relative.Contains("/obj/", StringComparison.Ordinal)
                || relative.Contains("/bin/", StringComparison.Ordinal))
            {
                continue;
            }
            var (withStrings, code) = StripComments(File.ReadAllText(file));
            foreach (var literal in provider.Names)
            {
                if (withStrings.Contains($"\"{literal}\"", StringComparison.OrdinalIgnoreCase))
                {
                    violations.Add($"{relative} spells the provider name \"{literal}\"");
                }
            }
            var sees = false;
            foreach (var ns in provider.Namespaces)
            {
                if (Regex.IsMatch(code, $@"\bnamespace\s+{Regex.Escape(ns)}\b"))
                {
                    violations.Add($"{relative} declares types in {ns}");
                    sees = true;
                }
                if (Regex.IsMatch(code, $@"\busing\s+(static\s+)?(\w+\s*=\s*)?(global::)?{Regex.Escape(ns)}\b") || code.Contains(ns + ".", StringComparison.Ordinal)
                    || Regex.IsMatch(code, $@"\bProviders\s*\.\s*{Regex.Escape(folder)}\b"))
                {
                    sees = true;
                    if (relative != CompositionRoot)
                    {
                        violations.Add($"{relative} imports or qualifies {ns}");
                    }
                }
            }
            if (!sees)
            {
                continue; // Without the namespace in scope, a type of the same name elsewhere is another type.
            }
            foreach (var type in provider.Types)
            {
                if (Regex.IsMatch(code, $@"(?<![\w.""])@?{type}\b"))
                {
                    violations.Add($"{relative} names {type}");
                }
            }
        }

        Assert.True(violations.Count == 0,
            $"Providers/{folder}/ is known outside its folder; only {CompositionRoot} may call its registration method:\n  " + string.Join("\n  ", violations));
    }

    [Theory]
    [MemberData(nameof(ProviderFolders))]
    public void ProviderFolder_Registration_CalledOnceByTheCompositionRootAndRegistersItsProvider(string folder)
    {
        var provider = Describe(folder);

        var (_, composition) = StripComments(File.ReadAllText(RepositoryFiles.PathOf(CompositionRoot)));
        Assert.Single(Regex.Matches(composition, $@"\.{provider.Registration.Name}\s*\(\s*\)"));
        Assert.NotEmpty(provider.Names);
    }

    private sealed record ProviderFolder(MethodInfo Registration, IReadOnlyList<string> Names, IReadOnlyList<string> Namespaces, IReadOnlyList<string> Types);

    /// <summary>What a provider folder declares: its registration method (found by reflection), the provider names it registers, its namespaces and types.</summary>
    private static ProviderFolder Describe(string folder)
    {
        var files = Directory.GetFiles(RepositoryFiles.PathOf($"{ProvidersFolder}/{folder}"), "*.cs", SearchOption.AllDirectories);
        var namespaces = new SortedSet<string>(StringComparer.Ordinal);
        var types = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var file in files)
        {
            var (_, code) = StripComments(File.ReadAllText(file));
            foreach (Match match in NamespaceDeclaration().Matches(code))
            {
                namespaces.Add(match.Groups["name"].Value);
            }
            foreach (Match match in TypeDeclaration().Matches(code))
            {
                types.Add(match.Groups["name"].Value);
            }
        }
        Assert.True(namespaces.Count > 0, $"Providers/{folder}/ declares no namespace.");
        var root = namespaces.First();
        Assert.All(namespaces, ns => Assert.True(ns == root || ns.StartsWith(root + ".", StringComparison.Ordinal),
            $"Providers/{folder}/ declares {ns}, outside its namespace {root}."));

        var registrations = typeof(IChatProvider).Assembly.GetExportedTypes()
            .Where(t => t.Namespace == root && t.IsAbstract && t.IsSealed)
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Static))
            .Where(m => Regex.IsMatch(m.Name, "^Add[A-Z][A-Za-z0-9]*Provider$") && m.GetParameters() is [{ ParameterType: var p }] && p == typeof(IServiceCollection))
            .ToArray();
        var registration = Assert.Single(registrations);

        var services = new ServiceCollection().AddLogging().AddSingleton(TimeProvider.System);
        registration.Invoke(null, [services]);
        using var built = services.BuildServiceProvider();
        var names = built.GetServices<IChatProvider>().Select(p => p.Name).ToArray();
        return new ProviderFolder(registration, names, namespaces.ToArray(), types.ToArray());
    }

    /// <summary>
    /// The code without comments, once with string and character literals kept (to find a provider name spelled as a
    /// literal) and once with them blanked (to find identifiers). Interpolation holes count as part of their string.
    /// </summary>
    private static (string WithStrings, string Code) StripComments(string source)
    {
        var withStrings = new StringBuilder(source.Length);
        var code = new StringBuilder(source.Length);
        var i = 0;
        while (i < source.Length)
        {
            var c = source[i];
            if (c == '/' && i + 1 < source.Length && source[i + 1] == '/')
            {
                while (i < source.Length && source[i] != '\n')
                {
                    i++;
                }
                continue;
            }
            if (c == '/' && i + 1 < source.Length && source[i + 1] == '*')
            {
                var end = source.IndexOf("*/", i + 2, StringComparison.Ordinal);
                i = end < 0 ? source.Length : end + 2;
                withStrings.Append(' ');
                code.Append(' ');
                continue;
            }
            if (c == '"' || c == '\'' || ((c == '@' || c == '$') && i + 1 < source.Length && (source[i + 1] == '"' || source[i + 1] == '@' || source[i + 1] == '$')))
            {
                var start = i;
                i = SkipLiteral(source, i);
                withStrings.Append(source, start, i - start);
                code.Append("\"\"");
                continue;
            }
            withStrings.Append(c);
            code.Append(c);
            i++;
        }
        return (withStrings.ToString(), code.ToString());
    }

    /// <summary>The index just past the string or character literal starting at <paramref name="i"/> (prefixes <c>$</c>/<c>@</c>, raw <c>"""</c> strings).</summary>
    private static int SkipLiteral(string source, int i)
    {
        var verbatim = false;
        while (source[i] is '$' or '@')
        {
            verbatim |= source[i] == '@';
            i++;
        }
        var quote = source[i];
        var run = 0;
        while (i + run < source.Length && source[i + run] == quote && quote == '"')
        {
            run++;
        }
        if (run >= 3)
        {
            var close = source.IndexOf(new string('"', run), i + run, StringComparison.Ordinal);
            return close < 0 ? source.Length : close + run;
        }
        i++;
        while (i < source.Length)
        {
            var c = source[i];
            if (verbatim && c == '"' && i + 1 < source.Length && source[i + 1] == '"')
            {
                i += 2;
                continue;
            }
            if (!verbatim && c == '\\')
            {
                i += 2;
                continue;
            }
            if (c == quote)
            {
                return i + 1;
            }
            if (!verbatim && c == '\n')
            {
                return i; // Not a literal after all (e.g. an apostrophe in a stray place): stop at the line's end.
            }
            i++;
        }
        return i;
    }

    [GeneratedRegex(@"\bnamespace\s+(?<name>[\w.]+)")]
    private static partial Regex NamespaceDeclaration();

    [GeneratedRegex(@"\b(class|struct|interface|enum|record(\s+(class|struct))?)\s+(?<name>[A-Za-z_]\w*)")]
    private static partial Regex TypeDeclaration();
}
