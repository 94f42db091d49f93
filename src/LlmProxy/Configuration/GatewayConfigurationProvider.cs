using Microsoft.Extensions.Options;

namespace LlmProxy.Configuration;

/// <summary>
/// Holds the configuration requests are served from. When the underlying configuration changes, the new
/// one is validated first; an invalid change is logged and rejected, and the gateway keeps serving from
/// the last valid configuration.
/// </summary>
public sealed partial class GatewayConfigurationProvider : IDisposable
{
    private readonly GatewayConfigurationBuilder _builder;
    private readonly ILogger<GatewayConfigurationProvider> _logger;
    private readonly IDisposable? _subscription;
    private readonly Lock _reloadGate = new();
    private GatewayConfiguration _current;

    public GatewayConfigurationProvider(IOptionsMonitor<LlmProxyOptions> options, GatewayConfigurationBuilder builder,
        ILogger<GatewayConfigurationProvider> logger)
    {
        _builder = builder;
        _logger = logger;
        _current = builder.Build(options.CurrentValue, out var errors)
            ?? throw new GatewayConfigurationException(errors);
        foreach (var warning in _current.Warnings)
        {
            LogWarning(_logger, warning);
        }
        _subscription = options.OnChange(Reload);
    }

    public GatewayConfiguration Current => Volatile.Read(ref _current);

    /// <summary>Raised after a valid new configuration has been swapped in.</summary>
    public event Action<GatewayConfiguration>? Changed;

    /// <summary>Validates <paramref name="options"/> and applies them if valid. Returns the problems found otherwise.</summary>
    public IReadOnlyList<string> Reload(LlmProxyOptions options)
    {
        // Serialized: a file change and an explicit reload may arrive together, and the last one built must be the one kept.
        lock (_reloadGate)
        {
            var next = _builder.Build(options, out var errors);
            LastReloadProblems = errors;
            if (next is null)
            {
                LogReloadRejected(_logger, errors.Count, string.Join(Environment.NewLine, errors));
                return errors;
            }
            Volatile.Write(ref _current, next);
            foreach (var warning in next.Warnings)
            {
                LogWarning(_logger, warning);
            }
            LogReloaded(_logger, next.Routes.Count, next.KeysByHash.Count);
            Changed?.Invoke(next);
            return errors;
        }
    }

    /// <summary>The problems of the last reload attempt (empty when it was applied, or when there has been none).</summary>
    internal IReadOnlyList<string> LastReloadProblems { get; private set; } = [];

    private void Reload(LlmProxyOptions options, string? name) => Reload(options);

    public void Dispose() => _subscription?.Dispose();

    [LoggerMessage(EventId = 1001, Level = LogLevel.Warning, Message = "Configuration: {Warning}")]
    private static partial void LogWarning(ILogger logger, string warning);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Error, Message = "Configuration change rejected, keeping the previous configuration. {Count} problem(s):\n{Problems}")]
    private static partial void LogReloadRejected(ILogger logger, int count, string problems);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Information, Message = "Configuration reloaded: {Models} model(s), {Keys} tenant key(s)")]
    private static partial void LogReloaded(ILogger logger, int models, int keys);
}

/// <summary>Thrown at startup when the configuration is invalid; lists every problem.</summary>
public sealed class GatewayConfigurationException(IReadOnlyList<string> problems)
    : Exception("LlmProxy configuration is invalid:" + Environment.NewLine + string.Join(Environment.NewLine, problems.Select(p => " - " + p)))
{
    public IReadOnlyList<string> Problems { get; } = problems;
}
