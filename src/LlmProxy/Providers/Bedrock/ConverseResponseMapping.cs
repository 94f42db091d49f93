using System.Security.Cryptography;
using System.Text.Json.Nodes;
using LlmProxy.OpenAi;
using LlmProxy.Pipeline;
using LlmProxy.Providers.Bedrock.Wire;

namespace LlmProxy.Providers.Bedrock;

/// <summary>The parts of a Converse response that mean the same in a completion and in a stream: stop reasons, usage, ids.</summary>
internal static class ConverseResponseMapping
{
    /// <summary>Bedrock's <c>stopReason</c> as an OpenAI <c>finish_reason</c>. Unknown future reasons read as a normal stop.</summary>
    public static string ToFinishReason(string? stopReason) => stopReason switch
    {
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        "guardrail_intervened" or "content_filtered" => "content_filter",
        _ => "stop", // end_turn, stop_sequence
    };

    /// <summary>
    /// Bedrock usage in OpenAI's terms. Bedrock's <c>inputTokens</c> excludes the prompt tokens read from or
    /// written to its prompt cache, while OpenAI's <c>prompt_tokens</c> includes its <c>cached_tokens</c>: so with
    /// cache counters present, prompt tokens are the sum of the three and the total is recomputed to match.
    /// </summary>
    public static TokenUsage ToTokenUsage(BedrockTokenUsage usage)
    {
        var cacheRead = usage.CacheReadInputTokens;
        var cacheWrite = usage.CacheWriteInputTokens;
        if (cacheRead is null && cacheWrite is null)
        {
            return new TokenUsage(usage.InputTokens, usage.OutputTokens, usage.TotalTokens);
        }
        var prompt = usage.InputTokens + (cacheRead ?? 0) + (cacheWrite ?? 0);
        return new TokenUsage(prompt, usage.OutputTokens, prompt + usage.OutputTokens, cacheRead);
    }

    public static JsonObject ToJson(TokenUsage usage) => OpenAiUsage.ToJson(usage);

    /// <summary>A completion id in OpenAI's form: <c>chatcmpl-</c> and 29 random letters and digits.</summary>
    public static string NewCompletionId() =>
        "chatcmpl-" + new string(RandomNumberGenerator.GetItems<char>("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 29));
}
