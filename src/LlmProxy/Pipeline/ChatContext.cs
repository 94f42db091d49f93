using System.Diagnostics;
using LlmProxy.OpenAi;
using LlmProxy.Routing;
using LlmProxy.Tenancy;

namespace LlmProxy.Pipeline;

/// <summary>
/// Everything the gateway knows about one chat completion while it is served: who asked, what, which
/// deployments were tried and what came back. Stages read and enrich it; metering and logging read it
/// at the end. Available to any code holding the HttpContext through <see cref="IChatContextFeature"/>.
/// </summary>
public sealed class ChatContext
{
    public ChatContext(HttpContext httpContext, TenantIdentity identity, ChatRequest request, ModelRoute route)
    {
        HttpContext = httpContext;
        Identity = identity;
        Request = request;
        Route = route;
        StartTimestamp = Stopwatch.GetTimestamp();
    }

    public HttpContext HttpContext { get; }
    public TenantIdentity Identity { get; }
    public ChatRequest Request { get; }
    public ModelRoute Route { get; }
    public long StartTimestamp { get; }

    /// <summary>The deployment whose response reached the client, once one did.</summary>
    public Deployment? ServedBy { get; set; }

    /// <summary>Upstream attempts made, failovers included.</summary>
    public int Attempts { get; set; }

    public TokenUsage? Usage { get; set; }

    /// <summary>Time from the start of the request to the first content chunk sent to the client (streams only).</summary>
    public TimeSpan? TimeToFirstToken { get; set; }

    /// <summary>Set by the response cache when the answer came from it.</summary>
    public bool CacheHit { get; set; }

    /// <summary>
    /// The upstream's own request id (from the header its provider names) of the answer the client got: the
    /// serving response, or the upstream error that became the client's error. Null when no upstream answered.
    /// </summary>
    public string? UpstreamRequestId { get; set; }

    /// <summary>OpenAI error code or type of the failure that ended the request, if it failed.</summary>
    public string? ErrorCode { get; set; }

    /// <summary>Observers of the response as the client receives it (e.g. the cache assembling a stream).</summary>
    public List<IChatResponseObserver> ResponseObservers { get; } = [];

    public TimeSpan Elapsed => Stopwatch.GetElapsedTime(StartTimestamp);
}

public interface IChatContextFeature
{
    ChatContext Context { get; }
}

internal sealed class ChatContextFeature(ChatContext context) : IChatContextFeature
{
    public ChatContext Context { get; } = context;
}

/// <summary>Sees the OpenAI-shaped response exactly as it is sent to the client.</summary>
public interface IChatResponseObserver
{
    /// <summary>A complete non-streamed response body (chat.completion JSON). Its bytes never change afterwards: an observer may keep them without a copy.</summary>
    void OnResponse(ReadOnlyMemory<byte> body) { }

    /// <summary>One streamed chat.completion.chunk: its JSON text (UTF-8) as sent, valid only during the call.</summary>
    void OnChunk(ReadOnlySpan<byte> chunkJson) { }

    /// <summary>The stream ended; <paramref name="completed"/> is false when it ended with an error or was cut short.</summary>
    void OnStreamEnd(bool completed) { }
}
