namespace LlmProxy.Simulator;

/// <summary>
/// The fault armed on a simulator, changed at runtime by tests (or by <c>POST /_sim/faults</c>).
/// Thread-safe: requests in flight take from it concurrently while a test sets or clears it.
/// </summary>
public sealed class SimulatorFaults
{
    private readonly Lock _gate = new();
    private SimulatorFault? _fault;
    private int? _remaining;

    /// <summary>The armed fault, or null when requests are answered normally.</summary>
    public SimulatorFault? Current
    {
        get
        {
            lock (_gate)
            {
                return _fault;
            }
        }
    }

    /// <summary>How many more requests the armed fault applies to; null means until <see cref="Clear"/>.</summary>
    public int? Remaining
    {
        get
        {
            lock (_gate)
            {
                return _remaining;
            }
        }
    }

    /// <summary>Raised after every <see cref="Set"/> and <see cref="Clear"/>; the listeners follow a <see cref="SimulatorFaultKind.Refuse"/> fault this way.</summary>
    internal event Action? Changed;

    /// <summary>
    /// Arms <paramref name="fault"/> for the next <paramref name="count"/> chat-completion requests it applies to
    /// (null: until <see cref="Clear"/>). Replaces any fault armed before. Mid-stream faults apply only to
    /// streamed requests, so non-streamed ones neither see them nor use up the count. A <see cref="SimulatorFaultKind.Refuse"/>
    /// fault takes no count (refused connections never become requests) and is in force when this returns.
    /// </summary>
    public void Set(SimulatorFault fault, int? count = null)
    {
        ArgumentNullException.ThrowIfNull(fault);
        if (count is { } n)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(n, 1, nameof(count));
            if (fault.Kind == SimulatorFaultKind.Refuse)
            {
                throw new ArgumentException("A refuse fault lasts until cleared; it takes no count.", nameof(count));
            }
        }

        lock (_gate)
        {
            _fault = fault;
            _remaining = count;
        }
        Changed?.Invoke();
    }

    /// <summary>Disarms the current fault, if any; after a <see cref="SimulatorFaultKind.Refuse"/> fault the simulator listens again when this returns.</summary>
    public void Clear()
    {
        lock (_gate)
        {
            _fault = null;
            _remaining = null;
        }
        Changed?.Invoke();
    }

    /// <summary>
    /// Takes the fault for one request, using up one of its count, or returns null when no fault applies.
    /// Checking and counting happen under one lock so that <c>count: 1</c> hits exactly one of several concurrent requests.
    /// </summary>
    internal SimulatorFault? TakeFor(bool streaming)
    {
        lock (_gate)
        {
            // A refuse fault acts on the listener, not on requests (a request can only arrive once it is cleared).
            if (_fault is null || (_fault.IsMidStream && !streaming) || _fault.Kind == SimulatorFaultKind.Refuse)
            {
                return null;
            }

            var taken = _fault;
            if (_remaining is { } remaining)
            {
                if (remaining <= 1)
                {
                    _fault = null;
                    _remaining = null;
                }
                else
                {
                    _remaining = remaining - 1;
                }
            }

            return taken;
        }
    }
}
