namespace LlmProxy.Pipeline;

public delegate Task ChatDelegate(ChatContext context);

/// <summary>
/// A stage of the chat completion pipeline that runs after the request has been authenticated, parsed
/// and routed (rate limiting and caching are stages). Stages run in registration order; the last
/// delegate sends the request upstream.
/// </summary>
public interface IChatMiddleware
{
    Task InvokeAsync(ChatContext context, ChatDelegate next);
}

/// <summary>Composes the registered <see cref="IChatMiddleware"/>s around the upstream dispatcher once, at startup.</summary>
internal sealed class ChatPipeline
{
    private readonly ChatDelegate _entry;

    public ChatPipeline(IEnumerable<IChatMiddleware> stages, Routing.UpstreamDispatcher dispatcher)
    {
        ChatDelegate next = dispatcher.DispatchAsync;
        foreach (var stage in stages.Reverse())
        {
            var following = next;
            next = context => stage.InvokeAsync(context, following);
        }
        _entry = next;
    }

    public Task RunAsync(ChatContext context) => _entry(context);
}
