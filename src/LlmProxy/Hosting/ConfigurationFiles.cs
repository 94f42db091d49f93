using LlmProxy.Configuration;
using Microsoft.Extensions.Configuration.Json;

namespace LlmProxy.Hosting;

public static class ConfigurationFiles
{
    /// <summary>Environment variable naming an extra JSON configuration file, applied over appsettings.json.</summary>
    public const string ConfigFileVariable = "LLMPROXY_CONFIG";

    /// <summary>The embedded defaults, with the quick start's demo tenant and routes, in the content root.</summary>
    public const string QuickStartFile = "appsettings.json";

    /// <summary>
    /// Layers the operator's configuration over the embedded defaults of appsettings.json: <c>config/llmproxy.json</c>
    /// when present, then the file named by <c>LLMPROXY_CONFIG</c>, then environment variables and the command line
    /// again so they keep the last word. Files are watched: a valid change is applied without a restart, and a change
    /// that does not parse is rejected for good (the file keeps its last good values, see
    /// <see cref="LastGoodJsonConfigurationSource"/>).
    /// </summary>
    public static WebApplicationBuilder AddLlmProxyConfigurationFiles(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        IConfigurationBuilder configuration = builder.Configuration;
        KeepLastGoodValues(configuration);
        configuration.Add(new LastGoodJsonConfigurationSource
        {
            Path = Path.Combine("config", "llmproxy.json"),
            Optional = true,
            WatchForChanges = true,
        });
        if (Environment.GetEnvironmentVariable(ConfigFileVariable) is { Length: > 0 } file)
        {
            var source = new LastGoodJsonConfigurationSource { Path = Path.GetFullPath(file), Optional = false, WatchForChanges = true };
            source.ResolveFileProvider();
            configuration.Add(source);
        }
        configuration.AddEnvironmentVariables();
        configuration.AddCommandLine(Environment.GetCommandLineArgs().Skip(1).ToArray());
        return builder;
    }

    /// <summary>
    /// Replaces the JSON files the host added already (appsettings.json and its environment variant) with the same files
    /// keeping their last good values, and marks the content root's appsettings.json as the quick start's defaults.
    /// </summary>
    private static void KeepLastGoodValues(IConfigurationBuilder configuration)
    {
        var quickStartMarked = false;
        for (var i = 0; i < configuration.Sources.Count; i++)
        {
            if (configuration.Sources[i] is JsonConfigurationSource json and not LastGoodJsonConfigurationSource)
            {
                var isQuickStart = !quickStartMarked && string.Equals(json.Path, QuickStartFile, StringComparison.Ordinal);
                quickStartMarked |= isQuickStart;
                configuration.Sources[i] = LastGoodJsonConfigurationSource.From(json, holdsQuickStartDefaults: isQuickStart);
            }
        }
    }
}
