using System.Collections.Concurrent;
using LlmProxy.Configuration;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace LlmProxy.Metering;

/// <summary>
/// Holds the price table loaded from <see cref="MeteringOptions.PricingFile"/>. An invalid file stops startup with every
/// problem listed; a missing one leaves every cost unknown (with a warning). The file is watched: a valid change is applied
/// at once, an invalid one is logged and the previous prices stay.
/// </summary>
internal sealed partial class PriceTableProvider : IDisposable
{
    /// <summary>Wait between a change notification and the read, as <c>FileConfigurationSource.ReloadDelay</c>.</summary>
    internal static readonly TimeSpan ReloadDelay = TimeSpan.FromMilliseconds(250);

    private readonly ILogger<PriceTableProvider> _logger;
    private readonly MeteringMetrics _metrics;
    private readonly PhysicalFileProvider? _files;
    private readonly IDisposable? _watch;
    private readonly ConcurrentDictionary<string, bool> _warnedMissing = new(StringComparer.Ordinal);
    private readonly Lock _reloadGate = new();
    private PriceTable _current;

    public PriceTableProvider(IOptions<MeteringOptions> options, IHostEnvironment environment, MeteringMetrics metrics, ILogger<PriceTableProvider> logger)
    {
        _logger = logger;
        _metrics = metrics;
        Path = options.Value.ResolvePath(environment.ContentRootPath, options.Value.PricingFile);
        if (!File.Exists(Path))
        {
            LogMissingFile(logger, Path);
            _current = PriceTable.Empty;
        }
        else
        {
            _current = PricingFile.Load(Path, out var errors) ?? throw new GatewayConfigurationException(errors);
            LogLoaded(logger, _current.Entries.Count, Path);
        }

        var directory = System.IO.Path.GetDirectoryName(Path);
        if (directory is not null && Directory.Exists(directory))
        {
            _files = new PhysicalFileProvider(directory);
            var name = System.IO.Path.GetFileName(Path);
            _watch = ChangeToken.OnChange(() => _files.Watch(name), OnFileChanged);
        }
    }

    /// <summary>The full path of the pricing file.</summary>
    public string Path { get; }

    public PriceTable Current => Volatile.Read(ref _current);

    /// <summary>
    /// The price of a request (see <see cref="PriceTable.Find"/>). A model with no price is counted
    /// (<c>llmproxy.pricing.missing</c>) and logged once per model.
    /// </summary>
    public ModelPrice? Find(string? provider, string? upstreamModel, string? requestedModel, DateTimeOffset at)
    {
        var price = Current.Find(provider, upstreamModel, requestedModel, at);
        if (price is null)
        {
            var model = upstreamModel ?? requestedModel ?? "unknown";
            _metrics.PriceMissing(model);
            if (_warnedMissing.TryAdd((provider ?? "") + "/" + model, true))
            {
                LogNoPrice(_logger, provider, model, requestedModel, Path);
            }
        }
        return price;
    }

    /// <summary>
    /// Reads the pricing file again and applies it if it is valid. Returns the problems found otherwise (also logged);
    /// the previous prices then stay. A file that has disappeared keeps the previous prices too, and is a problem
    /// unless there were none (a gateway started without a pricing file).
    /// </summary>
    internal IReadOnlyList<string> Reload()
    {
        lock (_reloadGate)
        {
            try
            {
                if (!File.Exists(Path))
                {
                    if (Current.Entries.Count == 0)
                    {
                        return [];
                    }
                    var missing = $"{Path}: the pricing file is gone; the previous prices stay.";
                    LogReloadRejected(_logger, Path, missing);
                    return [missing];
                }
                var next = PricingFile.Load(Path, out var errors);
                if (next is null)
                {
                    LogReloadRejected(_logger, Path, string.Join(Environment.NewLine, errors));
                    return errors;
                }
                Volatile.Write(ref _current, next);
                _warnedMissing.Clear();
                LogLoaded(_logger, next.Entries.Count, Path);
                return [];
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // The file is being written; the next change notification reads it again.
                LogReloadFailed(_logger, Path, ex);
                return [$"{Path}: could not be read ({ex.Message}); the previous prices stay."];
            }
        }
    }

    private void OnFileChanged()
    {
        // An editor's save is often a truncate then a write, each with its own notification: wait as the JSON
        // configuration files do, so the reload reads the finished file rather than rejecting a half-written one.
        Thread.Sleep(ReloadDelay);
        Reload();
    }

    public void Dispose()
    {
        _watch?.Dispose();
        _files?.Dispose();
    }

    [LoggerMessage(EventId = 7001, Level = LogLevel.Information, Message = "Pricing: {Count} price(s) loaded from {Path}")]
    private static partial void LogLoaded(ILogger logger, int count, string path);

    [LoggerMessage(EventId = 7002, Level = LogLevel.Warning, Message = "Pricing: no pricing file at {Path}; usage is recorded without cost")]
    private static partial void LogMissingFile(ILogger logger, string path);

    [LoggerMessage(EventId = 7003, Level = LogLevel.Warning, Message = "Pricing: no price for model {Model} at provider {Provider} (requested as {RequestedModel}); its usage is recorded without cost. Add it to {Path}")]
    private static partial void LogNoPrice(ILogger logger, string? provider, string model, string? requestedModel, string path);

    [LoggerMessage(EventId = 7004, Level = LogLevel.Error, Message = "Pricing: change to {Path} rejected, keeping the previous prices:\n{Problems}")]
    private static partial void LogReloadRejected(ILogger logger, string path, string problems);

    [LoggerMessage(EventId = 7005, Level = LogLevel.Warning, Message = "Pricing: could not read {Path}")]
    private static partial void LogReloadFailed(ILogger logger, string path, Exception exception);
}
