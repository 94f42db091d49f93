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

    public static int EstimatePrompt(JsonObject body) => EstimatePrompt(body, countTokens: null);

    /// <summary>
    /// The prompt estimate with the text counted by <paramref name="countTokens"/> (a real tokenizer) piece by piece, or
    /// at <see cref="CharactersPerToken"/> characters a token over all of it when that is null. Framing and images are
    /// counted the same way either way.
    /// </summary>
    public static int EstimatePrompt(JsonObject body, Func<string, int>? countTokens)
    {
        ArgumentNullException.ThrowIfNull(body);
        var text = new PromptText(countTokens);
        text.Fixed(ReplyPrimingTokens);
        if (body["messages"] is JsonArray messages)
        {
            foreach (var message in messages)
            {
                text.Fixed(TokensPerMessage);
                if (message is not JsonObject m)
                {
                    continue;
                }
                text.Add(m["name"]);
                AddContent(m["content"], ref text);
                if (m["tool_calls"] is JsonArray calls)
                {
                    foreach (var call in calls)
                    {
                        if (call?["function"] is JsonObject function)
                        {
                            text.Add(function["name"]);
                            text.Add(function["arguments"]);
                        }
                    }
                }
            }
        }
        // Definitions the model reads as part of its prompt.
        text.AddSerialized(body["tools"]);
        text.AddSerialized(body["functions"]);
        text.AddSerialized(body["response_format"]);
        return text.Total;
    }

    private static void AddContent(JsonNode? content, ref PromptText text)
    {
        switch (content)
        {
            case JsonValue:
                text.Add(content);
                break;
            case JsonArray parts:
                foreach (var part in parts)
                {
                    if (part is not JsonObject p)
                    {
                        continue;
                    }
                    var type = p["type"] is JsonValue t && t.TryGetValue<string>(out var s) ? s : null;
                    if (type is "image_url" or "input_image")
                    {
                        text.Fixed(TokensPerImage);
                    }
                    else
                    {
                        text.Add(p["text"]);
                        text.Add(p["refusal"]);
                    }
                }
                break;
        }
    }

    /// <summary>Sums a prompt's tokens: fixed ones, plus its text either counted by a tokenizer or by characters.</summary>
    private struct PromptText(Func<string, int>? countTokens)
    {
        private long _fixed;
        private long _characters;
        private long _counted;

        public readonly int Total =>
            (int)Math.Min(int.MaxValue, _fixed + _counted + (_characters + CharactersPerToken - 1) / CharactersPerToken);

        public void Fixed(int tokens) => _fixed += tokens;

        public void Add(JsonNode? node)
        {
            if (node is JsonValue value && value.TryGetValue<string>(out var text))
            {
                Add(text);
            }
        }

        public void AddSerialized(JsonNode? node)
        {
            if (node is not null && node.GetValueKind() != JsonValueKind.Null)
            {
                Add(node.ToJsonString());
            }
        }

        private void Add(string text)
        {
            if (countTokens is null)
            {
                _characters += text.Length;
            }
            else if (text.Length > 0)
            {
                _counted += countTokens(text);
            }
        }
    }

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
