using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;

namespace LlmProxy.Caching;

/// <summary>
/// Concurrent identical cacheable requests in one gateway process, keyed by cache key: the first becomes the
/// leader (looks the key up and, on a miss, asks the upstream), the others wait for the leader's result and are
/// served from it. A leader that gets no storable answer completes its flight with null and its followers go
/// upstream on their own, so nobody waits for more than one leader.
/// </summary>
internal sealed class SingleFlight
{
    private readonly ConcurrentDictionary<string, Flight> _flights = new(StringComparer.Ordinal);

    public int Count => _flights.Count;

    public bool TryGet(string key, [NotNullWhen(true)] out Flight? flight) => _flights.TryGetValue(key, out flight);

    /// <summary>Registers a new flight for <paramref name="key"/>; false when another request leads one already.</summary>
    public bool TryLead(string key, [NotNullWhen(true)] out Flight? flight)
    {
        var created = new Flight();
        if (_flights.TryAdd(key, created))
        {
            flight = created;
            return true;
        }
        flight = null;
        return false;
    }

    /// <summary>Removes the flight if it is still the one registered for the key.</summary>
    public void Release(string key, Flight flight) => _flights.TryRemove(KeyValuePair.Create(key, flight));
}

internal sealed class Flight
{
    private readonly TaskCompletionSource<byte[]?> _result = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The cache entry the leader obtained, or null when it got none.</summary>
    public Task<byte[]?> Result => _result.Task;

    public void Complete(byte[]? entry) => _result.TrySetResult(entry);
}
