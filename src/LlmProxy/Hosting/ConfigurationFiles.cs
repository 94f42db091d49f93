namespace LlmProxy.Hosting;

public static class ConfigurationFiles
{
    /// <summary>Environment variable naming an extra JSON configuration file, applied over appsettings.json.</summary>
    public const string ConfigFileVariable = "LLMPROXY_CONFIG";

    /// <summary>
    /// Layers the operator's configuration over the embedded defaults of appsettings.json: <c>config/llmproxy.json</c>
    /// when present, then the file named by <c>LLMPROXY_CONFIG</c>, then environment variables and the command line
    /// again so they keep the last word. Files are watched: a valid change is applied without a restart.
    /// </summary>
    public static WebApplicationBuilder AddLlmProxyConfigurationFiles(this WebApplicationBuilder builder)
    {
        builder.Configuration.AddJsonFile(Path.Combine("config", "llmproxy.json"), optional: true, reloadOnChange: true);
        if (Environment.GetEnvironmentVariable(ConfigFileVariable) is { Length: > 0 } file)
        {
            builder.Configuration.AddJsonFile(Path.GetFullPath(file), optional: false, reloadOnChange: true);
        }
        builder.Configuration.AddEnvironmentVariables();
        builder.Configuration.AddCommandLine(Environment.GetCommandLineArgs().Skip(1).ToArray());
        return builder;
    }
}
