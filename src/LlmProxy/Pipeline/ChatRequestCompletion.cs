using LlmProxy.Tenancy;

namespace LlmProxy.Pipeline;

/// <summary>
/// What is known about an authenticated chat completion request once it is over, whether it was served,
/// cached, rejected while being read, or failed upstream. <see cref="Chat"/> is null when the request
/// ended before it was routed (unreadable body, unknown model).
/// </summary>
public sealed record ChatRequestCompletion(
    HttpContext HttpContext,
    TenantIdentity Identity,
    string? RequestedModel,
    ChatContext? Chat,
    int StatusCode,
    TimeSpan Elapsed,
    DateTimeOffset StartedAt)
{
    /// <summary>Whether the client went away before the response was complete.</summary>
    public bool ClientDisconnected => HttpContext.RequestAborted.IsCancellationRequested;
}

/// <summary>
/// Told about every chat completion request when it ends (metering, metrics). Called on the request's
/// thread after the response has been written: implementations hand work off instead of doing I/O inline,
/// and must not throw.
/// </summary>
public interface IChatRequestCompletionListener
{
    void OnCompleted(ChatRequestCompletion completion);
}
