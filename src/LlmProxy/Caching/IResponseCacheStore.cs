namespace LlmProxy.Caching;

/// <summary>
/// Where cached responses live. Values are opaque bytes (see <see cref="CacheEntry"/>); keys come from
/// <see cref="ResponseCacheKey"/>. An implementation may throw on failure: the cache logs and counts the error and
/// serves the request as a miss. Cancellation is not a failure.
/// </summary>
public interface IResponseCacheStore
{
    /// <summary>The stored value, or null when there is none or it has expired.</summary>
    ValueTask<byte[]?> GetAsync(string key, CancellationToken cancellationToken);

    /// <summary>Stores <paramref name="value"/> under <paramref name="key"/> for <paramref name="validFor"/>, replacing any previous value.</summary>
    ValueTask SetAsync(string key, byte[] value, TimeSpan validFor, CancellationToken cancellationToken);
}
