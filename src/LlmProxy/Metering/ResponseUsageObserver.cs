using System.Text.Json;
using System.Text.Json.Nodes;
using LlmProxy.Pipeline;

namespace LlmProxy.Metering;

/// <summary>
/// Watches a response as the client receives it and keeps what is needed to estimate completion tokens when the
/// upstream reports none: the output characters of every streamed chunk, or of a non-streamed body without usage.
/// </summary>
internal sealed class ResponseUsageObserver(ChatContext chat) : IChatResponseObserver
{
    private long _outputCharacters;
    private int? _bodyCompletionTokens;

    /// <summary>Chunks the client was sent.</summary>
    public int Chunks { get; private set; }

    /// <summary>Whether a complete non-streamed body was seen.</summary>
    public bool SawResponse { get; private set; }

    /// <summary>Completion tokens of what the client received, estimated from its characters.</summary>
    public int EstimatedCompletionTokens => _bodyCompletionTokens ?? UsageEstimator.FromCharacters(_outputCharacters);

    public void OnChunk(JsonObject chunk)
    {
        Chunks++;
        _outputCharacters += UsageEstimator.OutputCharacters(chunk);
    }

    public void OnResponse(ReadOnlySpan<byte> body)
    {
        SawResponse = true;
        if (chat.Usage is not null)
        {
            // The usage is known; no need to parse the body again.
            return;
        }
        try
        {
            _bodyCompletionTokens = JsonNode.Parse(body) is JsonObject completion ? UsageEstimator.EstimateCompletion(completion) : 0;
        }
        catch (JsonException)
        {
            _bodyCompletionTokens = UsageEstimator.FromCharacters(body.Length);
        }
    }
}

/// <summary>Attaches a <see cref="ResponseUsageObserver"/> to every routed chat request.</summary>
internal sealed class MeteringChatMiddleware : IChatMiddleware
{
    public Task InvokeAsync(ChatContext context, ChatDelegate next)
    {
        ArgumentNullException.ThrowIfNull(context);
        var observer = new ResponseUsageObserver(context);
        context.ResponseObservers.Add(observer);
        context.HttpContext.Features.Set(observer);
        return next(context);
    }
}
