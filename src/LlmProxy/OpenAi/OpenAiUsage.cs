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

    private static int? ReadInt(JsonNode? node) =>
        node is JsonValue value && value.GetValueKind() == JsonValueKind.Number && value.TryGetValue(out int result) ? result : null;
}
