using Microsoft.Extensions.Configuration.Json;
using Microsoft.Extensions.Primitives;

namespace LlmProxy.Configuration;

/// <summary>
/// A JSON configuration file that keeps its last good values when a change to it does not parse.
/// <para>
/// The framework's JSON provider empties its values in memory when a watched file fails to parse, and reports nothing to
/// the configuration: the next change to any other file would then apply the emptied values (no tenants, no routes). This
/// source watches the file itself: a change that parses replaces the values and announces the reload; one that does not
/// keeps the previous values, announces nothing, and goes to <see cref="FileConfigurationSource.OnLoadException"/> (where
/// <see cref="ConfigurationReloader"/> logs it). An explicit reload of a file that does not parse throws, as before, and
/// also keeps the previous values. A watched file that is deleted loses its values, as with the framework's provider.
/// </para>
/// </summary>
internal sealed class LastGoodJsonConfigurationSource : JsonConfigurationSource
{
    /// <summary>Watch the file for changes (the framework's own <see cref="FileConfigurationSource.ReloadOnChange"/> stays off).</summary>
    public bool WatchForChanges { get; init; }

    /// <summary>This is the repository's <c>appsettings.json</c>, holding the quick start's demo tenant and routes.</summary>
    public bool HoldsQuickStartDefaults { get; init; }

    public override IConfigurationProvider Build(IConfigurationBuilder builder)
    {
        EnsureDefaults(builder);
        return new LastGoodJsonConfigurationProvider(this);
    }

    /// <summary>The same file as <paramref name="source"/>, with the same settings, keeping its last good values.</summary>
    public static LastGoodJsonConfigurationSource From(JsonConfigurationSource source, bool holdsQuickStartDefaults = false) => new()
    {
        FileProvider = source.FileProvider,
        Path = source.Path ?? string.Empty,
        Optional = source.Optional,
        ReloadDelay = source.ReloadDelay,
        OnLoadException = source.OnLoadException,
        ReloadOnChange = false,
        WatchForChanges = source.ReloadOnChange,
        HoldsQuickStartDefaults = holdsQuickStartDefaults,
    };
}

internal sealed class LastGoodJsonConfigurationProvider : JsonConfigurationProvider
{
    private readonly IDisposable? _watch;

    public LastGoodJsonConfigurationProvider(LastGoodJsonConfigurationSource source) : base(source)
    {
        if (source.WatchForChanges && source.FileProvider is { } files)
        {
            _watch = ChangeToken.OnChange(() => files.Watch(source.Path ?? ""), () =>
            {
                // As the framework does: editors write a file in several steps.
                Thread.Sleep(source.ReloadDelay);
                ReloadFromWatcher();
            });
        }
    }

    private void ReloadFromWatcher()
    {
        try
        {
            // Load() is the framework's first load: on a file that does not parse it leaves the values as they are, tells
            // OnLoadException, and throws; on success it swaps the values in and announces the reload.
            Load();
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException)
        {
            // Reported through OnLoadException; the previous values stay, and nothing is announced.
        }
    }

    protected override void Dispose(bool disposing)
    {
        _watch?.Dispose();
        base.Dispose(disposing);
    }
}
