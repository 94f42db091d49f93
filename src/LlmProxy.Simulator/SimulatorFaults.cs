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

    /// <summary>
    /// Arms <paramref name="fault"/> for the next <paramref name="count"/> chat-completion requests it applies to
    /// (null: until <see cref="Clear"/>). Replaces any fault armed before. Mid-stream faults apply only to
    /// streamed requests, so non-streamed ones neither see them nor use up the count.
    /// </summary>
    public void Set(SimulatorFault fault, int? count = null)
    {
        ArgumentNullException.ThrowIfNull(fault);
        if (count is { } n)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(n, 1, nameof(count));
        }

        lock (_gate)
        {
            _fault = fault;
            _remaining = count;
        }
    }

    /// <summary>Disarms the current fault, if any.</summary>
    public void Clear()
    {
        lock (_gate)
        {
            _fault = null;
            _remaining = null;
        }
    }

    /// <summary>
    /// Takes the fault for one request, using up one of its count, or returns null when no fault applies.
    /// Checking and counting happen under one lock so that <c>count: 1</c> hits exactly one of several concurrent requests.
    /// </summary>
    internal SimulatorFault? TakeFor(bool streaming)
    {
        lock (_gate)
        {
            if (_fault is null || (_fault.IsMidStream && !streaming))
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
