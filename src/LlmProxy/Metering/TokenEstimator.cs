using System.Text.Json;
using System.Text.Json.Nodes;
using LlmProxy.OpenAi;

namespace LlmProxy.Metering;

/// <summary>
/// Rough token counts for when a provider gives none (a stream cut short, an upstream that omits usage) and for
/// admission decisions before a request is sent (token rate limits). No tokenizer is involved: about four characters
/// of English text make a token, plus OpenAI's fixed framing per message. Expect ±25% on prose, more on code or
/// non-Latin scripts; records carrying estimates are marked as such.
/// </summary>
public static class TokenEstimator
{
    /// <summary>Characters per token of ordinary text.</summary>
    public const int CharactersPerToken = 4;

    /// <summary>Framing tokens per message (role and separators), as OpenAI's chat format counts them.</summary>
    public const int TokensPerMessage = 3;

    /// <summary>Extra token for a message carrying a <c>name</c>.</summary>
    public const int TokensPerName = 1;

    /// <summary>Tokens that prime the assistant's reply, counted once per request.</summary>
    public const int ReplyPrimingTokens = 3;

    /// <summary>Tokens counted for an image part (the low-detail base cost).</summary>
    public const int TokensPerImage = 85;

    /// <summary>Tokens of <paramref name="characters"/> characters of text: ⌈characters / 4⌉.</summary>
    public static int FromCharacters(long characters) =>
        characters <= 0 ? 0 : (int)Math.Min(int.MaxValue, (characters + CharactersPerToken - 1) / CharactersPerToken);

    /// <summary>Tokens of a piece of text.</summary>
    public static int EstimateText(string? text) => FromCharacters(text?.Length ?? 0);

    /// <summary>Prompt tokens of a chat completion request: its messages, and its tool definitions when it has any.</summary>
    public static int EstimatePrompt(ChatRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var tokens = EstimateMessages(request.Messages);
        if (request.Body["tools"] is JsonArray tools && tools.Count > 0)
        {
            tokens += FromCharacters(tools.ToJsonString().Length);
        }
        return tokens;
    }

    /// <summary>Prompt tokens of a <c>messages</c> array, framing included.</summary>
    public static int EstimateMessages(JsonArray messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        long characters = 0;
        long framing = ReplyPrimingTokens;
        foreach (var node in messages)
        {
            if (node is not JsonObject message)
            {
                continue;
            }
            framing += TokensPerMessage;
            if (message["name"] is JsonValue name && name.GetValueKind() == JsonValueKind.String)
            {
                framing += TokensPerName;
                characters += name.GetValue<string>().Length;
            }
            switch (message["content"])
            {
                case JsonValue text when text.GetValueKind() == JsonValueKind.String:
                    characters += text.GetValue<string>().Length;
                    break;
                case JsonArray parts:
                    foreach (var part in parts)
                    {
                        if (part is not JsonObject p)
                        {
                            continue;
                        }
                        if (StringOf(p["text"]) is { } partText)
                        {
                            characters += partText.Length;
                        }
                        else if (p["image_url"] is not null || p["input_audio"] is not null || p["file"] is not null)
                        {
                            framing += TokensPerImage;
                        }
                    }
                    break;
            }
            if (message["tool_calls"] is JsonArray calls)
            {
                characters += ToolCallCharacters(calls);
            }
        }
        return (int)Math.Min(int.MaxValue, framing + FromCharacters(characters));
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
            characters += ToolCallCharacters(calls);
        }
        return characters;
    }

    private static long ToolCallCharacters(JsonArray calls)
    {
        long characters = 0;
        foreach (var call in calls)
        {
            if (call?["function"] is JsonObject function)
            {
                characters += (StringOf(function["name"])?.Length ?? 0) + (StringOf(function["arguments"])?.Length ?? 0);
            }
        }
        return characters;
    }

    private static string? StringOf(JsonNode? node) =>
        node is JsonValue value && value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : null;
}
