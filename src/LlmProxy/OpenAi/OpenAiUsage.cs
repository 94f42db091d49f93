using System.Text.Json;
using System.Text.Json.Nodes;
using LlmProxy.Pipeline;

namespace LlmProxy.OpenAi;

/// <summary>Reads and writes OpenAI's <c>usage</c> object.</summary>
public static class OpenAiUsage
{
    public static TokenUsage? Read(JsonNode? usage)
    {
        if (usage is not JsonObject obj)
        {
            return null;
        }
        var prompt = ReadInt(obj["prompt_tokens"]);
        var completion = ReadInt(obj["completion_tokens"]);
        var total = ReadInt(obj["total_tokens"]) ?? (prompt ?? 0) + (completion ?? 0);
        int? cached = obj["prompt_tokens_details"] is JsonObject details ? ReadInt(details["cached_tokens"]) : null;
        return new TokenUsage(prompt ?? 0, completion ?? 0, total, cached);
    }

    /// <summary>
    /// The same as <see cref="Read(JsonNode?)"/> for a reader positioned on the usage value (any token); leaves the
    /// reader on the value's last token, as <see cref="Utf8JsonReader.Skip"/> does.
    /// </summary>
    public static TokenUsage? Read(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return null;
        }
        int? prompt = null, completion = null, total = null, cached = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("prompt_tokens"u8))
            {
                prompt = ReadInt(ref reader);
            }
            else if (reader.ValueTextEquals("completion_tokens"u8))
            {
                completion = ReadInt(ref reader);
            }
            else if (reader.ValueTextEquals("total_tokens"u8))
            {
                total = ReadInt(ref reader);
            }
            else if (reader.ValueTextEquals("prompt_tokens_details"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.StartObject)
                {
                    cached = null;
                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        if (reader.ValueTextEquals("cached_tokens"u8))
                        {
                            cached = ReadInt(ref reader);
                        }
                        else
                        {
                            reader.Read();
                            reader.Skip();
                        }
                    }
                }
                else
                {
                    cached = null;
                    reader.Skip();
                }
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
        return new TokenUsage(prompt ?? 0, completion ?? 0, total ?? (prompt ?? 0) + (completion ?? 0), cached);
    }

    public static JsonObject ToJson(TokenUsage usage)
    {
        var obj = new JsonObject
        {
            ["prompt_tokens"] = usage.PromptTokens,
            ["completion_tokens"] = usage.CompletionTokens,
            ["total_tokens"] = usage.TotalTokens,
        };
        if (usage.CachedPromptTokens is { } cached)
        {
            obj["prompt_tokens_details"] = new JsonObject { ["cached_tokens"] = cached };
        }
        return obj;
    }

    private static int? ReadInt(ref Utf8JsonReader reader)
    {
        reader.Read();
        if (reader.TokenType == JsonTokenType.Number)
        {
            return reader.TryGetInt32(out var value) ? value : null;
        }
        reader.Skip();
        return null;
    }

    private static int? ReadInt(JsonNode? node) =>
        node is JsonValue value && value.GetValueKind() == JsonValueKind.Number && value.TryGetValue(out int result) ? result : null;
}
