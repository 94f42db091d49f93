using System.Text.Json;
using System.Text.Json.Nodes;
using LlmProxy.OpenAi;

namespace LlmProxy.Metering;

/// <summary>
/// Token counts for a response the upstream reported no usage for (a stream cut short, an upstream that omits usage).
/// The prompt is estimated by the gateway's one prompt estimator (<see cref="RateLimiting.TokenEstimator"/>, which rate
/// limiting reserves capacity with); the completion from the output the client was sent, at four characters a token.
/// No tokenizer is involved: expect ±25% on prose, more on code or non-Latin scripts. Records carrying estimates say so.
/// </summary>
internal static class UsageEstimator
{
    /// <summary>Tokens of <paramref name="characters"/> characters of text: ⌈characters / 4⌉.</summary>
    public static int FromCharacters(long characters) =>
        characters <= 0 ? 0 : (int)Math.Min(int.MaxValue, (characters + RateLimiting.TokenEstimator.CharactersPerToken - 1) / RateLimiting.TokenEstimator.CharactersPerToken);

    /// <summary>Tokens of a piece of text.</summary>
    public static int EstimateText(string? text) => FromCharacters(text?.Length ?? 0);

    /// <summary>Prompt tokens of a chat completion request: messages with their framing, and tool definitions.</summary>
    public static int EstimatePrompt(ChatRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return RateLimiting.TokenEstimator.EstimatePrompt(request.Body);
    }

    /// <summary>
    /// Characters of model output carried by one <c>chat.completion.chunk</c>: content, refusal, reasoning and tool call
    /// names and arguments of every choice.
    /// </summary>
    public static int OutputCharacters(JsonObject chunk)
    {
        ArgumentNullException.ThrowIfNull(chunk);
        if (chunk["choices"] is not JsonArray choices)
        {
            return 0;
        }
        long characters = 0;
        foreach (var choice in choices)
        {
            if (choice?["delta"] is JsonObject delta)
            {
                characters += MessageOutputCharacters(delta);
            }
        }
        return (int)Math.Min(int.MaxValue, characters);
    }

    /// <summary>Completion tokens of a complete <c>chat.completion</c> object: the messages of every choice.</summary>
    public static int EstimateCompletion(JsonObject completion)
    {
        ArgumentNullException.ThrowIfNull(completion);
        if (completion["choices"] is not JsonArray choices)
        {
            return 0;
        }
        long characters = 0;
        foreach (var choice in choices)
        {
            if (choice?["message"] is JsonObject message)
            {
                characters += MessageOutputCharacters(message);
            }
        }
        return FromCharacters(characters);
    }

    private static long MessageOutputCharacters(JsonObject message)
    {
        long characters = (StringOf(message["content"])?.Length ?? 0)
            + (StringOf(message["refusal"])?.Length ?? 0)
            + (StringOf(message["reasoning_content"])?.Length ?? 0);
        if (message["tool_calls"] is JsonArray calls)
        {
            foreach (var call in calls)
            {
                if (call?["function"] is JsonObject function)
                {
                    characters += (StringOf(function["name"])?.Length ?? 0) + (StringOf(function["arguments"])?.Length ?? 0);
                }
            }
        }
        return characters;
    }

    private static string? StringOf(JsonNode? node) =>
        node is JsonValue value && value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : null;
}
