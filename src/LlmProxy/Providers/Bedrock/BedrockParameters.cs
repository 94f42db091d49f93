using System.Collections.Frozen;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace LlmProxy.Providers.Bedrock;

internal enum ParameterSupport
{
    /// <summary>Mapped onto a Converse member.</summary>
    Translated,

    /// <summary>Harmless to leave out: it changes nothing about the answer.</summary>
    Ignored,

    /// <summary>Bedrock cannot honour it: 400, or dropped when the deployment sets <c>DropUnsupportedParams</c>.</summary>
    Unsupported,
}

/// <param name="Support">How the parameter is handled.</param>
/// <param name="IsDefault">
/// For unsupported parameters: values that ask for what Bedrock does anyway (<c>n: 1</c>, <c>logprobs: false</c>,
/// a penalty of 0...) are accepted and left out. A JSON <c>null</c> is always the default.
/// </param>
internal sealed record ParameterRule(ParameterSupport Support, Func<JsonNode, bool>? IsDefault = null);

/// <summary>
/// The one table of OpenAI chat completion parameters and what the Bedrock provider does with each.
/// Parameters not listed are unknown and treated as unsupported (OpenAI itself rejects unknown parameters).
/// Keep the parameter table of the repository README (section "AWS Bedrock", "Parameters") in step with it.
/// </summary>
internal static class BedrockParameters
{
    public static readonly FrozenDictionary<string, ParameterRule> Rules = new Dictionary<string, ParameterRule>(StringComparer.Ordinal)
    {
        ["model"] = new(ParameterSupport.Translated),
        ["messages"] = new(ParameterSupport.Translated),
        ["max_tokens"] = new(ParameterSupport.Translated),
        ["max_completion_tokens"] = new(ParameterSupport.Translated),
        ["temperature"] = new(ParameterSupport.Translated),
        ["top_p"] = new(ParameterSupport.Translated),
        ["stop"] = new(ParameterSupport.Translated),
        ["tools"] = new(ParameterSupport.Translated),
        ["tool_choice"] = new(ParameterSupport.Translated),
        ["stream"] = new(ParameterSupport.Translated),
        ["stream_options"] = new(ParameterSupport.Translated),

        ["user"] = new(ParameterSupport.Ignored),
        ["safety_identifier"] = new(ParameterSupport.Ignored),
        ["metadata"] = new(ParameterSupport.Ignored),
        ["store"] = new(ParameterSupport.Ignored),
        ["service_tier"] = new(ParameterSupport.Ignored),
        ["prompt_cache_key"] = new(ParameterSupport.Ignored),
        ["prompt_cache_retention"] = new(ParameterSupport.Ignored),

        ["n"] = new(ParameterSupport.Unsupported, v => IsNumber(v, 1)),
        ["parallel_tool_calls"] = new(ParameterSupport.Unsupported, v => v.GetValueKind() == JsonValueKind.True),
        ["logprobs"] = new(ParameterSupport.Unsupported, v => v.GetValueKind() == JsonValueKind.False),
        ["top_logprobs"] = new(ParameterSupport.Unsupported, v => IsNumber(v, 0)),
        ["logit_bias"] = new(ParameterSupport.Unsupported, v => v is JsonObject { Count: 0 }),
        ["presence_penalty"] = new(ParameterSupport.Unsupported, v => IsNumber(v, 0)),
        ["frequency_penalty"] = new(ParameterSupport.Unsupported, v => IsNumber(v, 0)),
        ["seed"] = new(ParameterSupport.Unsupported),
        ["response_format"] = new(ParameterSupport.Unsupported, v => v is JsonObject o && o["type"] is JsonValue t && t.GetValueKind() == JsonValueKind.String && t.GetValue<string>() == "text"),
        ["audio"] = new(ParameterSupport.Unsupported),
        ["modalities"] = new(ParameterSupport.Unsupported, v => v is JsonArray { Count: 1 } a && a[0] is JsonValue m && m.GetValueKind() == JsonValueKind.String && m.GetValue<string>() == "text"),
        ["prediction"] = new(ParameterSupport.Unsupported),
        ["reasoning_effort"] = new(ParameterSupport.Unsupported),
        ["verbosity"] = new(ParameterSupport.Unsupported),
        ["web_search_options"] = new(ParameterSupport.Unsupported),
        ["functions"] = new(ParameterSupport.Unsupported),
        ["function_call"] = new(ParameterSupport.Unsupported),
        ["moderation"] = new(ParameterSupport.Unsupported),
        ["prompt_cache_options"] = new(ParameterSupport.Unsupported),
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>Whether the client's value of <paramref name="name"/> is one Bedrock cannot honour (unknown parameters included).</summary>
    public static bool IsUnsupported(string name, JsonNode? value)
    {
        if (value is null)
        {
            return false;
        }
        if (!Rules.TryGetValue(name, out var rule))
        {
            return true;
        }
        return rule.Support == ParameterSupport.Unsupported && !(rule.IsDefault?.Invoke(value) ?? false);
    }

    private static bool IsNumber(JsonNode value, double expected) =>
        value is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out double d) && d == expected;
}
