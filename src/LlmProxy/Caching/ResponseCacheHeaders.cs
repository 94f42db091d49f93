using System.Globalization;
using Microsoft.Extensions.Primitives;

namespace LlmProxy.Caching;

/// <summary>The HTTP headers of the response cache. Documented in Caching/README.md.</summary>
public static class ResponseCacheHeaders
{
    /// <summary>Response header: <c>HIT</c>, <c>MISS</c> or <c>BYPASS</c>. Absent when caching does not apply to the request.</summary>
    public const string Result = "x-llmproxy-cache";

    /// <summary>Request header: seconds the response may be kept, capped by the configured TTL; <c>0</c> means do not store.</summary>
    public const string Ttl = "x-llmproxy-cache-ttl";

    public const string Hit = "HIT";
    public const string Miss = "MISS";
    public const string Bypass = "BYPASS";
}

/// <summary>What a client asked of the cache through its request headers.</summary>
/// <param name="NoCache"><c>Cache-Control: no-cache</c>: do not answer from the cache; fetch a fresh answer and store it.</param>
/// <param name="NoStore"><c>Cache-Control: no-store</c> (or a TTL of 0): do not store this request's answer.</param>
/// <param name="Ttl">The <c>x-llmproxy-cache-ttl</c> the client asked for, if any.</param>
internal readonly record struct ClientCacheControls(bool NoCache, bool NoStore, TimeSpan? Ttl)
{
    public static ClientCacheControls Read(IHeaderDictionary headers)
    {
        ArgumentNullException.ThrowIfNull(headers);
        var noCache = false;
        var noStore = false;
        var cacheControl = headers.CacheControl;
        if (!StringValues.IsNullOrEmpty(cacheControl))
        {
            foreach (var value in cacheControl)
            {
                foreach (var directive in (value ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                {
                    var name = directive.AsSpan();
                    var equals = name.IndexOf('=');
                    if (equals >= 0)
                    {
                        name = name[..equals].TrimEnd();
                    }
                    if (name.Equals("no-cache", StringComparison.OrdinalIgnoreCase))
                    {
                        noCache = true;
                    }
                    else if (name.Equals("no-store", StringComparison.OrdinalIgnoreCase))
                    {
                        noStore = true;
                    }
                }
            }
        }

        TimeSpan? ttl = null;
        if (headers.TryGetValue(ResponseCacheHeaders.Ttl, out var ttlHeader)
            && double.TryParse(ttlHeader.ToString().Trim(), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var seconds)
            && double.IsFinite(seconds) && seconds < TimeSpan.MaxValue.TotalSeconds)
        {
            ttl = TimeSpan.FromSeconds(seconds);
            if (ttl <= TimeSpan.Zero)
            {
                noStore = true;
            }
        }
        return new ClientCacheControls(noCache, noStore, ttl);
    }
}
