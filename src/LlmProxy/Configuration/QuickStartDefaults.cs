using Microsoft.Extensions.Options;

namespace LlmProxy.Configuration;

/// <summary>
/// The quick start's demo tenant, routes and embedded simulator live in the repository's <c>appsettings.json</c>, the
/// lowest configuration layer. Layers can add keys but never remove them, so an operator's own configuration would keep
/// the demo tenant, whose key the README publishes, and the simulator routes. When any other layer defines a tenant,
/// what only <c>appsettings.json</c> sets under <c>LlmProxy:Tenants</c> (tenants and keys), <c>LlmProxy:Models</c>
/// (models and deployments) and <c>LlmProxy:Simulator:Enabled</c> is left out, unless
/// <see cref="LlmProxyOptions.KeepQuickStartDefaults"/> is true. Runs on every binding, so a reload never brings them back
/// while the configuration has tenants of its own.
/// </summary>
internal sealed class QuickStartDefaults(IConfiguration configuration) : IPostConfigureOptions<LlmProxyOptions>
{
    private const string Tenants = LlmProxyOptions.SectionName + ":Tenants";
    private const string Models = LlmProxyOptions.SectionName + ":Models";
    private const string SimulatorEnabled = LlmProxyOptions.SectionName + ":Simulator:Enabled";

    public void PostConfigure(string? name, LlmProxyOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.QuickStartDefaultsLeftOut = [];
        if (options.KeepQuickStartDefaults || configuration is not IConfigurationRoot root
            || root.Providers.FirstOrDefault(IsQuickStart) is not { } quickStart)
        {
            return;
        }
        var others = root.Providers.Where(p => !ReferenceEquals(p, quickStart)).ToArray();
        if (!others.Any(p => Children(p, Tenants).Length > 0))
        {
            return;
        }

        var leftOut = new List<string>();
        foreach (var tenant in Children(quickStart, Tenants))
        {
            var path = $"{Tenants}:{tenant}";
            if (!DefinedElsewhere(path) && Remove(options.Tenants, tenant))
            {
                leftOut.Add($"tenant '{tenant}'");
            }
            else if (Find(options.Tenants, tenant) is { } kept)
            {
                // The operator configures a tenant of the same name: it keeps only the keys the operator gives it.
                foreach (var keyId in Children(quickStart, path + ":Keys").Where(k => !DefinedElsewhere($"{path}:Keys:{k}")))
                {
                    if (Remove(kept.Keys, keyId))
                    {
                        leftOut.Add($"key '{tenant}:{keyId}'");
                    }
                }
            }
        }
        foreach (var model in Children(quickStart, Models))
        {
            var path = $"{Models}:{model}";
            if (!DefinedElsewhere(path))
            {
                if (Remove(options.Models, model))
                {
                    leftOut.Add($"model '{model}'");
                }
            }
            else if (Find(options.Models, model) is { } kept)
            {
                foreach (var deployment in Children(quickStart, path + ":Deployments").Where(d => !DefinedElsewhere($"{path}:Deployments:{d}")))
                {
                    if (Remove(kept.Deployments, deployment))
                    {
                        leftOut.Add($"deployment '{model}:{deployment}'");
                    }
                }
            }
        }
        if (quickStart.TryGet(SimulatorEnabled, out _) && !DefinedElsewhere(SimulatorEnabled) && options.Simulator.Enabled)
        {
            options.Simulator.Enabled = false;
            leftOut.Add("the embedded simulator");
        }
        options.QuickStartDefaultsLeftOut = leftOut;

        bool DefinedElsewhere(string path) => others.Any(p => p.TryGet(path, out _) || Children(p, path).Length > 0);
    }

    private static bool IsQuickStart(IConfigurationProvider provider) =>
        provider is FileConfigurationProvider { Source: LastGoodJsonConfigurationSource { HoldsQuickStartDefaults: true } };

    private static string[] Children(IConfigurationProvider provider, string path) =>
        provider.GetChildKeys([], path).Distinct(StringComparer.OrdinalIgnoreCase).ToArray();

    // Configuration keys compare without case; the option dictionaries keep the spelling the binder met first.
    private static TValue? Find<TValue>(Dictionary<string, TValue> values, string key) where TValue : class =>
        values.FirstOrDefault(e => string.Equals(e.Key, key, StringComparison.OrdinalIgnoreCase)).Value;

    private static bool Remove<TValue>(Dictionary<string, TValue> values, string key) =>
        values.Keys.FirstOrDefault(k => string.Equals(k, key, StringComparison.OrdinalIgnoreCase)) is { } spelled && values.Remove(spelled);
}
