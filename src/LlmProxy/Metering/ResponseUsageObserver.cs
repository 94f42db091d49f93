using System.Text.Json;
using System.Text.Json.Nodes;
using LlmProxy.Pipeline;
using Microsoft.ML.Tokenizers;

namespace LlmProxy.Metering;

/// <summary>
/// Watches a response as the client receives it and keeps what is needed to estimate completion tokens when the
/// upstream reports none: the output text of every streamed chunk, or of a non-streamed body without usage.
/// </summary>
internal sealed class ResponseUsageObserver(ChatContext chat) : IChatResponseObserver
{
    private readonly OutputText _output = new();
    private int? _unparsedBodyTokens;

    /// <summary>Chunks the client was sent.</summary>
    public int Chunks { get; private set; }

    /// <summary>Whether a complete non-streamed body was seen.</summary>
    public bool SawResponse { get; private set; }

    /// <summary>Completion tokens of what the client received: counted by <paramref name="tokenizer"/> when there is one, else estimated from its characters.</summary>
    public int EstimateCompletionTokens(Tokenizer? tokenizer) => _unparsedBodyTokens ?? _output.Tokens(tokenizer);

    public void OnChunk(ReadOnlySpan<byte> chunkJson)
    {
        Chunks++;
        UsageEstimator.AddChunkOutput(chunkJson, _output);
    }

    public void OnResponse(ReadOnlyMemory<byte> body)
    {
        SawResponse = true;
        if (chat.Usage is not null)
        {
            // The usage is known; no need to parse the body again.
            return;
        }
        try
        {
            if (JsonNode.Parse(body.Span) is JsonObject completion)
            {
                UsageEstimator.AddCompletionOutput(completion, _output);
            }
        }
        catch (JsonException)
        {
            _unparsedBodyTokens = UsageEstimator.FromCharacters(body.Length);
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
