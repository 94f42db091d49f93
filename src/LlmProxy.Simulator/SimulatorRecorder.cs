namespace LlmProxy.Simulator;

/// <summary>One request as it reached the simulator.</summary>
/// <param name="Method">The HTTP method.</param>
/// <param name="Path">The path as sent, still percent-encoded (an encoded Bedrock model id shows as sent), without the query string.</param>
/// <param name="QueryString">The query string with its leading '?', or empty.</param>
/// <param name="Headers">Every request header (names case-insensitive, repeated values joined with ", ").</param>
/// <param name="Body">The body decoded as UTF-8; empty when there was none.</param>
/// <param name="ReceivedAt">When the simulator received it.</param>
public sealed record RecordedRequest(
    string Method,
    string Path,
    string QueryString,
    IReadOnlyDictionary<string, string> Headers,
    string Body,
    DateTimeOffset ReceivedAt)
{
    /// <summary>A header value, or null when the request did not carry it.</summary>
    public string? Header(string name) => Headers.TryGetValue(name, out var value) ? value : null;
}

/// <summary>
/// What the simulator received, so tests can assert on what reached the upstream (the headers a
/// gateway forwarded, the body it rewrote). Requests are recorded before authentication and faults,
/// so a request that was answered with a fault is still seen here. Control requests (<c>/_sim/</c>) are not recorded.
/// Thread-safe.
/// </summary>
public sealed class SimulatorRecorder
{
    /// <summary>How many recent requests are kept unless <see cref="SimulatorOptions.RecordedRequestLimit"/> says otherwise.</summary>
    public const int DefaultLimit = 100;

    private readonly Lock _gate = new();
    private readonly Queue<RecordedRequest> _recent = new();
    private readonly int _limit;
    private int _count;

    public SimulatorRecorder(int limit = DefaultLimit)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        _limit = limit;
    }

    /// <summary>How many requests arrived since the start or the last <see cref="Reset"/>, including those no longer kept.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _count;
            }
        }
    }

    /// <summary>A snapshot of the most recent requests, oldest first.</summary>
    public IReadOnlyList<RecordedRequest> Recent
    {
        get
        {
            lock (_gate)
            {
                return _recent.ToArray();
            }
        }
    }

    /// <summary>The most recent request, or null when none arrived.</summary>
    public RecordedRequest? Last
    {
        get
        {
            lock (_gate)
            {
                return _recent.Count == 0 ? null : _recent.Last();
            }
        }
    }

    /// <summary>Forgets every request and sets <see cref="Count"/> back to zero.</summary>
    public void Reset()
    {
        lock (_gate)
        {
            _recent.Clear();
            _count = 0;
        }
    }

    internal void Record(RecordedRequest request)
    {
        lock (_gate)
        {
            _count++;
            _recent.Enqueue(request);
            while (_recent.Count > _limit)
            {
                _recent.Dequeue();
            }
        }
    }
}
