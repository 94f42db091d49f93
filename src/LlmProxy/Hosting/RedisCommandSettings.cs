using StackExchange.Redis;

namespace LlmProxy.Hosting;

/// <summary>
/// How the cache and the rate limiter use StackExchange.Redis: a command gives up after the feature's timeout (the
/// client's async timeout), and fails at once while Redis is disconnected instead of queueing until it times out,
/// so each feature's own fallback (a cache miss, the rate limiter's failure mode) takes over without delay.
/// </summary>
internal static class RedisCommandSettings
{
    /// <summary>
    /// Sets the async timeout to <paramref name="timeout"/> unless the configuration string chose one, and a heartbeat
    /// (when the client looks for timed-out commands; every second by default) of half the timeout, between 100 ms and 1 s.
    /// </summary>
    public static void Apply(ConfigurationOptions configuration, string text, TimeSpan timeout)
    {
        if (!HasOption(text, "asyncTimeout"))
        {
            configuration.AsyncTimeout = (int)Math.Ceiling(timeout.TotalMilliseconds);
        }
        configuration.HeartbeatInterval = TimeSpan.FromMilliseconds(Math.Clamp(configuration.AsyncTimeout / 2.0, 100, 1000));
        configuration.BacklogPolicy = BacklogPolicy.FailFast;
    }

    /// <summary>Whether the configuration string sets <paramref name="name"/> itself.</summary>
    public static bool HasOption(string text, string name)
    {
        foreach (var part in text.Split(','))
        {
            var trimmed = part.AsSpan().Trim();
            if (trimmed.StartsWith(name, StringComparison.OrdinalIgnoreCase) && trimmed.Length > name.Length && trimmed[name.Length] == '=')
            {
                return true;
            }
        }
        return false;
    }
}
