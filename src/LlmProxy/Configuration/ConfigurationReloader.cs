using LlmProxy.Caching;
using LlmProxy.Metering;
using LlmProxy.Pipeline;
using LlmProxy.RateLimiting;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace LlmProxy.Configuration;

/// <summary>What one explicit reload did.</summary>
/// <param name="Problems">Every problem found, in every part; empty when everything was applied.</param>
/// <param name="Gateway">The routes, tenants and keys in force afterwards.</param>
/// <param name="Prices">Prices in force afterwards; null when metering is off.</param>
public sealed record ConfigurationReloadOutcome(IReadOnlyList<string> Problems, GatewayConfiguration Gateway, int? Prices);

/// <summary>
/// Reloads everything that can change without a restart, on request (<c>POST /admin/config/reload</c>, SIGHUP), and makes
/// sure no rejected change goes unlogged when a file changes.
/// <para>
/// The reloadable parts: routes, tenants and keys (<c>LlmProxy</c>, applied by <see cref="GatewayConfigurationProvider"/>),
/// rate limits and budgets (<c>LlmProxy:RateLimits</c>), the response cache policy (<c>LlmProxy:Cache</c>), and the price
/// table (the pricing file). Each is validated on its own when it changes: a valid part is applied, an invalid one is
/// logged and keeps its previous configuration. An explicit reload re-reads every configuration source and the pricing
/// file, then reports the problems of every part together.
/// </para>
/// </summary>
internal sealed partial class ConfigurationReloader : IDisposable
{
    private readonly IConfiguration _configuration;
    private readonly GatewayConfigurationProvider _gateway;
    private readonly IServiceProvider _services;
    private readonly ILogger<ConfigurationReloader> _logger;
    private readonly Lock _gate = new();
    private readonly IDisposable _subscription;

    public ConfigurationReloader(IConfiguration configuration, GatewayConfigurationProvider gateway, IServiceProvider services,
        ILogger<ConfigurationReloader> logger)
    {
        _configuration = configuration;
        _gateway = gateway;
        _services = services;
        _logger = logger;
        ObserveFileErrors();
        _subscription = ChangeToken.OnChange(configuration.GetReloadToken, OnConfigurationChanged);
        // The chat stages (the cache policy and store among them) read their options when they are created, which would
        // otherwise be at the first chat request: after an invalid edit made before it, options that cannot be created,
        // and every chat request would fail (or a store setting documented as read at startup would change). Build them
        // now, while the options are the ones startup validated.
        _ = services.GetService<ChatPipeline>();
    }

    /// <summary>
    /// Re-reads every configuration source and the pricing file now, applies each valid part, and returns every problem
    /// found. <paramref name="trigger"/> says who asked, for the log.
    /// </summary>
    public ConfigurationReloadOutcome Reload(string trigger)
    {
        lock (_gate)
        {
            LogReloadRequested(_logger, trigger);
            var problems = new List<string>();
            var sourcesRead = true;
            if (_configuration is IConfigurationRoot root)
            {
                try
                {
                    // Every subscriber (the parts below) runs before this returns, each applying or rejecting its section.
                    root.Reload();
                }
                catch (InvalidDataException ex)
                {
                    // A file that does not parse stops the reload before it is announced: no part sees a change.
                    problems.Add(Describe(ex) + " Nothing from the configuration files was applied.");
                    sourcesRead = false;
                }
                catch (AggregateException ex)
                {
                    // Subscribers whose options cannot be created (a value of the wrong type, a refused cache setting)
                    // throw; the checks below report those. Anything else is unexpected and reported as it is.
                    foreach (var inner in ex.Flatten().InnerExceptions.Where(e => !IsOptionsProblem(e)))
                    {
                        LogSubscriberFailed(_logger, inner);
                        problems.Add($"A configuration subscriber failed: {inner.Message}");
                    }
                }
            }
            if (sourcesRead)
            {
                problems.AddRange(TryCreate<LlmProxyOptions>(out _) is { Count: > 0 } binding ? binding : _gateway.LastReloadProblems);
                problems.AddRange(TryCreate<RateLimitOptions>(out var limits) is { Count: > 0 } limitBinding
                    ? limitBinding
                    : RateLimitOptionsValidator.Collect(limits!));
                problems.AddRange(TryCreate<ResponseCacheOptions>(out _));
            }

            int? prices = null;
            try
            {
                if (_services.GetService<PriceTableProvider>() is { } pricing)
                {
                    problems.AddRange(pricing.Reload());
                    prices = pricing.Current.Entries.Count;
                }
            }
            catch (GatewayConfigurationException ex)
            {
                // The price table had not been loaded yet, and its file is invalid.
                problems.AddRange(ex.Problems);
            }

            var current = _gateway.Current;
            if (problems.Count > 0)
            {
                LogReloadRejected(_logger, trigger, problems.Count, string.Join(Environment.NewLine, problems));
            }
            else
            {
                LogReloadApplied(_logger, trigger, current.Routes.Count, current.KeysByHash.Count, prices);
            }
            return new ConfigurationReloadOutcome(problems, current, prices);
        }
    }

    /// <summary>
    /// After any configuration change. The routes and the rate limits check their own sections and log what they reject.
    /// Two kinds of problem never reach them, because their options cannot even be created: a value that does not convert
    /// to its type (<c>"Ttl": "soon"</c>), and a cache setting its validator refuses. Those changes would otherwise be
    /// dropped without a word (the previous settings stay either way).
    /// </summary>
    private void OnConfigurationChanged()
    {
        Report(LlmProxyOptions.SectionName, TryCreate<LlmProxyOptions>(out _));
        Report(RateLimitOptions.SectionName, TryCreate<RateLimitOptions>(out _));
        Report(ResponseCacheOptions.SectionName, TryCreate<ResponseCacheOptions>(out _));

        void Report(string section, IReadOnlyList<string> problems)
        {
            if (problems.Count > 0)
            {
                LogSectionRejected(_logger, section, problems.Count, string.Join(Environment.NewLine, problems));
            }
        }
    }

    /// <summary>Creates the options as a subscriber would get them now (bound, configured, validated), or returns why not.</summary>
    private IReadOnlyList<string> TryCreate<TOptions>(out TOptions? options) where TOptions : class
    {
        options = null;
        try
        {
            options = _services.GetRequiredService<IOptionsFactory<TOptions>>().Create(Options.DefaultName);
            return [];
        }
        catch (OptionsValidationException ex)
        {
            return [.. ex.Failures];
        }
        catch (InvalidOperationException ex)
        {
            // The binder's message names the key and the type ("Failed to convert configuration value ... at
            // 'LlmProxy:Cache:Ttl' to type 'System.TimeSpan'"); only non-string settings can fail this way.
            return [ex.Message];
        }
    }

    private static bool IsOptionsProblem(Exception exception) => exception is OptionsValidationException or InvalidOperationException;

    /// <summary>
    /// A JSON file that does not parse fails its reload inside the file watcher, where nobody sees the exception. Log it;
    /// the handler does not swallow the error, so the reload is abandoned and the file keeps its last good values
    /// (<see cref="LastGoodJsonConfigurationSource"/>; the framework's own JSON source would have emptied them).
    /// </summary>
    private void ObserveFileErrors()
    {
        if (_configuration is not IConfigurationRoot root)
        {
            return;
        }
        foreach (var provider in root.Providers.OfType<FileConfigurationProvider>())
        {
            var previous = provider.Source.OnLoadException;
            provider.Source.OnLoadException = context =>
            {
                previous?.Invoke(context);
                if (!context.Ignore)
                {
                    LogFileRejected(_logger, Describe(context.Exception));
                }
            };
        }
    }

    private static string Describe(Exception exception)
    {
        var innermost = exception;
        while (innermost.InnerException is not null)
        {
            innermost = innermost.InnerException;
        }
        // Parser messages give the position of the error, never the file's content.
        return ReferenceEquals(innermost, exception) ? exception.Message : $"{exception.Message} {innermost.Message}";
    }

    public void Dispose() => _subscription.Dispose();

    [LoggerMessage(EventId = 1004, Level = LogLevel.Error, Message = "Configuration change to {Section} rejected, keeping its previous settings. {Count} problem(s):\n{Problems}")]
    private static partial void LogSectionRejected(ILogger logger, string section, int count, string problems);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Error, Message = "Configuration file rejected, keeping the previous configuration: {Problem}")]
    private static partial void LogFileRejected(ILogger logger, string problem);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Information, Message = "Configuration reload requested ({Trigger})")]
    private static partial void LogReloadRequested(ILogger logger, string trigger);

    [LoggerMessage(EventId = 1007, Level = LogLevel.Information, Message = "Configuration reload ({Trigger}) applied: {Models} model(s), {Keys} tenant key(s), {Prices} price(s)")]
    private static partial void LogReloadApplied(ILogger logger, string trigger, int models, int keys, int? prices);

    [LoggerMessage(EventId = 1008, Level = LogLevel.Error, Message = "Configuration reload ({Trigger}): {Count} problem(s); the parts with problems keep their previous configuration, the others were applied:\n{Problems}")]
    private static partial void LogReloadRejected(ILogger logger, string trigger, int count, string problems);

    [LoggerMessage(EventId = 1009, Level = LogLevel.Error, Message = "Configuration reload: a subscriber failed")]
    private static partial void LogSubscriberFailed(ILogger logger, Exception exception);
}
