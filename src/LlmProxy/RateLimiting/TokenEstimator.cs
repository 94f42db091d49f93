using System.Text.Json;
using System.Text.Json.Nodes;

namespace LlmProxy.RateLimiting;

/// <summary>Tokens a request reserves before it is sent: an estimate of its prompt plus the most it may generate.</summary>
internal readonly record struct TokenEstimate(int PromptTokens, int CompletionTokens)
{
    public long Total => (long)PromptTokens + CompletionTokens;
}

/// <summary>
/// A tokenizer-free estimate of a chat request's size, good enough to reserve rate-limit capacity (the reservation is
/// corrected with the reported usage when the response ends): about four characters per token over the text of the
/// messages, plus OpenAI's per-message framing overhead, plus the tool and response-format definitions the model also
/// reads. Images count a fixed 85 tokens (OpenAI's low-detail price), whatever their size as data URLs.
/// </summary>
internal static class TokenEstimator
{
    public const int CharactersPerToken = 4;
    public const int TokensPerMessage = 4;
    public const int ReplyPrimingTokens = 3;
    public const int TokensPerImage = 85;

    public static TokenEstimate Estimate(JsonObject body, int? defaultMaxTokens)
    {
        ArgumentNullException.ThrowIfNull(body);
        var prompt = EstimatePrompt(body);
        var perChoice = MaxCompletionTokens(body) ?? defaultMaxTokens ?? 0;
        var choices = body["n"] is JsonValue n && n.TryGetValue<int>(out var count) && count > 1 ? count : 1;
        var completion = (long)perChoice * choices;
        return new TokenEstimate(prompt, (int)Math.Min(int.MaxValue, completion));
    }

    /// <summary><c>max_completion_tokens</c>, or the older <c>max_tokens</c>, when the request sets one.</summary>
    public static int? MaxCompletionTokens(JsonObject body) =>
        ReadPositiveInt(body["max_completion_tokens"]) ?? ReadPositiveInt(body["max_tokens"]);

    public static int EstimatePrompt(JsonObject body)
    {
        long characters = 0;
        long fixedTokens = ReplyPrimingTokens;
        if (body["messages"] is JsonArray messages)
        {
            foreach (var message in messages)
            {
                fixedTokens += TokensPerMessage;
                if (message is not JsonObject m)
                {
                    continue;
                }
                characters += Length(m["name"]);
                characters += ContentLength(m["content"], ref fixedTokens);
                if (m["tool_calls"] is JsonArray calls)
                {
                    foreach (var call in calls)
                    {
                        if (call?["function"] is JsonObject function)
                        {
                            characters += Length(function["name"]) + Length(function["arguments"]);
                        }
                    }
                }
            }
        }
        // Definitions the model reads as part of its prompt.
        characters += SerializedLength(body["tools"]) + SerializedLength(body["functions"]) + SerializedLength(body["response_format"]);

        var total = fixedTokens + (characters + CharactersPerToken - 1) / CharactersPerToken;
        return (int)Math.Min(int.MaxValue, total);
    }

    private static long ContentLength(JsonNode? content, ref long fixedTokens)
    {
        switch (content)
        {
            case JsonValue:
                return Length(content);
            case JsonArray parts:
                long characters = 0;
                foreach (var part in parts)
                {
                    if (part is not JsonObject p)
                    {
                        continue;
                    }
                    var type = p["type"] is JsonValue t && t.TryGetValue<string>(out var s) ? s : null;
                    if (type is "image_url" or "input_image")
                    {
                        fixedTokens += TokensPerImage;
                    }
                    else
                    {
                        characters += Length(p["text"]) + Length(p["refusal"]);
                    }
                }
                return characters;
            default:
                return 0;
        }
    }

    private static long Length(JsonNode? node) =>
        node is JsonValue value && value.TryGetValue<string>(out var text) ? text.Length : 0;

    private static long SerializedLength(JsonNode? node) =>
        node is null || node.GetValueKind() == JsonValueKind.Null ? 0 : node.ToJsonString().Length;

    private static int? ReadPositiveInt(JsonNode? node)
    {
        if (node is not JsonValue value)
        {
            return null;
        }
        if (value.TryGetValue<int>(out var i))
        {
            return i > 0 ? i : null;
        }
        if (value.TryGetValue<long>(out var l))
        {
            return l > 0 ? (int)Math.Min(int.MaxValue, l) : null;
        }
        if (value.TryGetValue<double>(out var d) && d >= 1)
        {
            return d >= int.MaxValue ? int.MaxValue : (int)d;
        }
        return null;
    }
}
