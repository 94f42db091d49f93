namespace LlmProxy.Caching.Redis;

/// <summary>
/// A small circuit for a remote store. Closed: every operation is attempted. After a failure it opens: operations
/// are skipped (the cache answers "miss" at once) until the backoff has passed; then one operation probes the
/// store. A failed probe doubles the backoff up to a maximum, a successful one closes the circuit.
/// </summary>
internal sealed class StoreBackoff
{
    private readonly Lock _lock = new();
    private readonly TimeSpan _initial;
    private readonly TimeSpan _max;
    private readonly TimeProvider _time;
    private TimeSpan _current;
    private long _openUntilTicks;   // 0 while closed
    private bool _probing;

    public StoreBackoff(TimeSpan initial, TimeSpan max, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(initial, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(max, initial);
        ArgumentNullException.ThrowIfNull(time);
        _initial = initial;
        _max = max;
        _time = time;
        _current = initial;
    }

    public bool IsOpen => Volatile.Read(ref _openUntilTicks) != 0;

    /// <summary>The pause in force, or the next one while closed.</summary>
    public TimeSpan CurrentBackoff
    {
        get
        {
            lock (_lock)
            {
                return _current;
            }
        }
    }

    /// <summary>Whether an operation may go to the store now; <paramref name="probe"/> marks the single probe of an open circuit.</summary>
    public bool TryEnter(out bool probe)
    {
        probe = false;
        var openUntil = Volatile.Read(ref _openUntilTicks);
        if (openUntil == 0)
        {
            return true;
        }
        if (_time.GetUtcNow().UtcTicks < openUntil)
        {
            return false;
        }
        lock (_lock)
        {
            if (_openUntilTicks == 0)
            {
                return true;
            }
            if (_probing || _time.GetUtcNow().UtcTicks < _openUntilTicks)
            {
                return false;
            }
            _probing = true;
            probe = true;
            return true;
        }
    }

    /// <summary>Records a successful operation; true when it closed an open circuit.</summary>
    public bool OnSuccess(bool probe)
    {
        if (!probe && Volatile.Read(ref _openUntilTicks) == 0)
        {
            return false;
        }
        lock (_lock)
        {
            var wasOpen = _openUntilTicks != 0;
            _openUntilTicks = 0;
            _probing = false;
            _current = _initial;
            return wasOpen;
        }
    }

    /// <summary>Records a failed operation; returns the pause now in force when this failure opened or re-opened the circuit, else null.</summary>
    public TimeSpan? OnFailure(bool probe)
    {
        lock (_lock)
        {
            var now = _time.GetUtcNow().UtcTicks;
            if (_openUntilTicks == 0)
            {
                _current = _initial;
                _openUntilTicks = now + _current.Ticks;
                return _current;
            }
            if (!probe)
            {
                // Another operation that was already under way when the circuit opened.
                return null;
            }
            _probing = false;
            var doubled = TimeSpan.FromTicks(Math.Min(_current.Ticks * 2, _max.Ticks));
            _current = doubled;
            _openUntilTicks = now + _current.Ticks;
            return _current;
        }
    }

    /// <summary>A probe that ended without a verdict (the caller cancelled): let another operation probe.</summary>
    public void Abandon(bool probe)
    {
        if (!probe)
        {
            return;
        }
        lock (_lock)
        {
            _probing = false;
        }
    }
}
