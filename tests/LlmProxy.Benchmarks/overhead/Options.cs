using System.Globalization;

namespace LlmProxy.Benchmarks.Overhead;

/// <summary>Command-line options of the form <c>--name value</c>.</summary>
internal static class Options
{
    public static string? Read(string[] args, string name)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
    }

    public static bool Has(string[] args, string name) => Array.IndexOf(args, name) >= 0;

    public static int ReadInt(string[] args, string name, int fallback) =>
        Read(args, name) is { } text ? int.Parse(text, NumberStyles.None, CultureInfo.InvariantCulture) : fallback;

    /// <summary>A duration written <c>10s</c>, <c>500ms</c>, <c>2m</c> or a plain number of seconds.</summary>
    public static TimeSpan ReadDuration(string[] args, string name, TimeSpan fallback)
    {
        if (Read(args, name) is not { } text)
        {
            return fallback;
        }
        if (text.EndsWith("ms", StringComparison.Ordinal))
        {
            return TimeSpan.FromMilliseconds(double.Parse(text[..^2], CultureInfo.InvariantCulture));
        }
        if (text.EndsWith('m'))
        {
            return TimeSpan.FromMinutes(double.Parse(text[..^1], CultureInfo.InvariantCulture));
        }
        return TimeSpan.FromSeconds(double.Parse(text.TrimEnd('s'), CultureInfo.InvariantCulture));
    }
}
