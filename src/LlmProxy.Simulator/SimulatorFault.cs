namespace LlmProxy.Simulator;

/// <summary>The ways the simulator can misbehave on purpose.</summary>
public enum SimulatorFaultKind
{
    /// <summary>Answer with an HTTP error status and an OpenAI-shaped error body.</summary>
    Status,

    /// <summary>Abort the TCP connection before any response byte is sent.</summary>
    Reset,

    /// <summary>Never answer; the request ends only when the client gives up (or the server stops).</summary>
    Hang,

    /// <summary>Streaming only: send <see cref="SimulatorFault.AfterChunks"/> chunks, then abort the connection.</summary>
    MidStreamAbort,

    /// <summary>
    /// Streaming only: send <see cref="SimulatorFault.AfterChunks"/> chunks, then an error event and end the stream:
    /// an OpenAI error event (<c>data: {"error":{...}}</c>) without <c>[DONE]</c>, or a Bedrock exception event.
    /// </summary>
    MidStreamError,

    /// <summary>
    /// Stop listening until the fault is cleared: connecting is refused (TCP RST to the SYN), as from a stopped server, and
    /// open connections are dropped. Listeners on control URLs stay open. Not counted: it lasts until cleared.
    /// </summary>
    Refuse,
}

/// <summary>
/// One fault to inject into chat-completion requests. Create it with the factory methods, which
/// validate their arguments, and arm it with <see cref="SimulatorFaults.Set"/>.
/// </summary>
public sealed record SimulatorFault
{
    private SimulatorFault(SimulatorFaultKind kind, int statusCode, int? retryAfterSeconds, int afterChunks)
    {
        Kind = kind;
        StatusCode = statusCode;
        RetryAfterSeconds = retryAfterSeconds;
        AfterChunks = afterChunks;
    }

    public SimulatorFaultKind Kind { get; }

    /// <summary>
    /// The HTTP status of a <see cref="SimulatorFaultKind.Status"/> fault, or the status a <see cref="SimulatorFaultKind.MidStreamError"/>
    /// event reports when one was given; 0 otherwise.
    /// </summary>
    public int StatusCode { get; }

    /// <summary>The <c>Retry-After</c> header value, in seconds, of a <see cref="SimulatorFaultKind.Status"/> fault, if any.</summary>
    public int? RetryAfterSeconds { get; }

    /// <summary>How many <c>chat.completion.chunk</c> events a mid-stream fault lets through first; 0 for other kinds.</summary>
    public int AfterChunks { get; }

    /// <summary>True for the kinds that only make sense on a streamed reply.</summary>
    public bool IsMidStream => Kind is SimulatorFaultKind.MidStreamAbort or SimulatorFaultKind.MidStreamError;

    /// <summary>An error status (400-599) with OpenAI's error body for that status, and an optional <c>Retry-After</c>.</summary>
    public static SimulatorFault Status(int statusCode, int? retryAfterSeconds = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(statusCode, 400);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(statusCode, 599);
        if (retryAfterSeconds is { } seconds)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(seconds, nameof(retryAfterSeconds));
        }

        return new SimulatorFault(SimulatorFaultKind.Status, statusCode, retryAfterSeconds, 0);
    }

    /// <summary>Abort the connection before answering.</summary>
    public static SimulatorFault Reset() => new(SimulatorFaultKind.Reset, 0, null, 0);

    /// <summary>Refuse connections until the fault is cleared.</summary>
    public static SimulatorFault Refuse() => new(SimulatorFaultKind.Refuse, 0, null, 0);

    /// <summary>Never answer.</summary>
    public static SimulatorFault Hang() => new(SimulatorFaultKind.Hang, 0, null, 0);

    /// <summary>Streaming: send <paramref name="afterChunks"/> chunks, then abort the connection.</summary>
    public static SimulatorFault MidStreamAbort(int afterChunks)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(afterChunks);
        return new SimulatorFault(SimulatorFaultKind.MidStreamAbort, 0, null, afterChunks);
    }

    /// <summary>
    /// Streaming: send <paramref name="afterChunks"/> chunks (events), then an error event, and end. Without
    /// <paramref name="statusCode"/> the event is OpenAI's generic <c>server_error</c>, or Bedrock's <c>modelStreamErrorException</c>.
    /// With it (400-599) the event is OpenAI's error body for that status, or Bedrock's exception for it:
    /// 429 <c>throttlingException</c>, 503 <c>serviceUnavailableException</c>, 500 <c>internalServerException</c>,
    /// 400 <c>validationException</c>, any other <c>modelStreamErrorException</c>.
    /// </summary>
    public static SimulatorFault MidStreamError(int afterChunks, int? statusCode = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(afterChunks);
        if (statusCode is { } status)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(status, 400, nameof(statusCode));
            ArgumentOutOfRangeException.ThrowIfGreaterThan(status, 599, nameof(statusCode));
        }

        return new SimulatorFault(SimulatorFaultKind.MidStreamError, statusCode ?? 0, null, afterChunks);
    }

    public override string ToString() => Kind switch
    {
        SimulatorFaultKind.Status when RetryAfterSeconds is { } s => $"Status({StatusCode}, Retry-After {s}s)",
        SimulatorFaultKind.Status => $"Status({StatusCode})",
        SimulatorFaultKind.MidStreamError when StatusCode != 0 => $"{Kind}(after {AfterChunks} chunks, status {StatusCode})",
        SimulatorFaultKind.MidStreamAbort or SimulatorFaultKind.MidStreamError => $"{Kind}(after {AfterChunks} chunks)",
        _ => Kind.ToString(),
    };
}
