using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LlmProxy.OpenAi;
using LlmProxy.Pipeline;

namespace LlmProxy.Caching;

/// <summary>
/// Rebuilds the <c>chat.completion</c> a streamed response amounts to, from the <c>chat.completion.chunk</c>s as the
/// client received them: content and refusals concatenated per choice, tool calls merged by index (id, type and
/// name from the first chunk that has them, arguments concatenated), log probabilities appended, the last
/// finish_reason, and the usage (from the usage chunk when the client saw it, else from what the gateway metered).
/// </summary>
internal sealed class StreamAssembler
{
    private readonly long _maxBytes;
    private readonly SortedDictionary<int, ChoiceState> _choices = [];
    private string? _id;
    private JsonNode? _created;
    private string? _model;
    private JsonNode? _systemFingerprint;
    private JsonNode? _serviceTier;
    private JsonNode? _usage;
    private long _bytes;

    public StreamAssembler(long maxBytes) => _maxBytes = maxBytes;

    /// <summary>True once the assembled response is known to exceed the size limit; nothing more is kept.</summary>
    public bool TooLarge { get; private set; }

    public void Add(JsonObject chunk)
    {
        if (TooLarge)
        {
            return;
        }
        _id ??= ReadString(chunk["id"]);
        _created ??= chunk["created"]?.DeepClone();
        _model ??= ReadString(chunk["model"]);
        if (_systemFingerprint is null && chunk["system_fingerprint"] is JsonValue fingerprint && fingerprint.GetValueKind() == JsonValueKind.String)
        {
            _systemFingerprint = fingerprint.DeepClone();
        }
        if (_serviceTier is null && chunk["service_tier"] is JsonValue tier && tier.GetValueKind() == JsonValueKind.String)
        {
            _serviceTier = tier.DeepClone();
        }
        if (chunk["usage"] is JsonObject usage)
        {
            _usage = usage.DeepClone();
        }
        if (chunk["choices"] is not JsonArray choices)
        {
            return;
        }
        foreach (var choiceNode in choices)
        {
            if (choiceNode is not JsonObject choice)
            {
                continue;
            }
            var index = ReadInt(choice["index"]) ?? 0;
            if (!_choices.TryGetValue(index, out var state))
            {
                _choices[index] = state = new ChoiceState();
            }
            if (choice["delta"] is JsonObject delta)
            {
                AddDelta(state, delta);
            }
            if (choice["logprobs"] is JsonObject logprobs)
            {
                AddLogprobs(state, logprobs);
            }
            if (ReadString(choice["finish_reason"]) is { } finishReason)
            {
                state.FinishReason = finishReason;
            }
        }
        if (_bytes > _maxBytes)
        {
            TooLarge = true;
            _choices.Clear();
        }
    }

    private void AddDelta(ChoiceState state, JsonObject delta)
    {
        state.Role ??= ReadString(delta["role"]);
        if (ReadString(delta["content"]) is { } content)
        {
            (state.Content ??= new StringBuilder()).Append(content);
            _bytes += content.Length;
        }
        if (ReadString(delta["refusal"]) is { } refusal)
        {
            (state.Refusal ??= new StringBuilder()).Append(refusal);
            _bytes += refusal.Length;
        }
        if (delta["tool_calls"] is JsonArray toolCalls)
        {
            state.ToolCalls ??= [];
            for (var position = 0; position < toolCalls.Count; position++)
            {
                if (toolCalls[position] is not JsonObject call)
                {
                    continue;
                }
                var index = ReadInt(call["index"]) ?? position;
                if (!state.ToolCalls.TryGetValue(index, out var merged))
                {
                    state.ToolCalls[index] = merged = new ToolCallState();
                }
                merged.Id ??= ReadString(call["id"]);
                merged.Type ??= ReadString(call["type"]);
                if (call["function"] is JsonObject function)
                {
                    merged.Name ??= ReadString(function["name"]);
                    if (ReadString(function["arguments"]) is { } arguments)
                    {
                        merged.Arguments.Append(arguments);
                        _bytes += arguments.Length;
                    }
                }
                _bytes += 64;
            }
        }
        if (delta["function_call"] is JsonObject functionCall)
        {
            state.FunctionCall ??= new ToolCallState();
            state.FunctionCall.Name ??= ReadString(functionCall["name"]);
            if (ReadString(functionCall["arguments"]) is { } arguments)
            {
                state.FunctionCall.Arguments.Append(arguments);
                _bytes += arguments.Length;
            }
        }
    }

    private void AddLogprobs(ChoiceState state, JsonObject logprobs)
    {
        foreach (var part in (ReadOnlySpan<string>)["content", "refusal"])
        {
            if (logprobs[part] is JsonArray items)
            {
                state.Logprobs ??= [];
                if (!state.Logprobs.TryGetValue(part, out var list))
                {
                    state.Logprobs[part] = list = [];
                }
                foreach (var item in items)
                {
                    list.Add(item?.DeepClone());
                    _bytes += 128;
                }
            }
        }
    }

    /// <summary>
    /// The assembled <c>chat.completion</c> JSON, or null when the stream did not amount to a complete response:
    /// no choices, a choice without finish_reason, or over the size limit.
    /// </summary>
    public byte[]? Build(TokenUsage? meteredUsage)
    {
        if (TooLarge || _choices.Count == 0 || _choices.Values.Any(c => c.FinishReason is null))
        {
            return null;
        }
        var buffer = new ArrayBufferWriter<byte>((int)Math.Min(_bytes + 1024, int.MaxValue / 2));
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("id", _id ?? "");
            writer.WriteString("object", "chat.completion");
            writer.WritePropertyName("created");
            WriteNode(writer, _created ?? JsonValue.Create(0));
            writer.WriteString("model", _model ?? "");
            if (_systemFingerprint is not null)
            {
                writer.WritePropertyName("system_fingerprint");
                _systemFingerprint.WriteTo(writer);
            }
            if (_serviceTier is not null)
            {
                writer.WritePropertyName("service_tier");
                _serviceTier.WriteTo(writer);
            }
            writer.WriteStartArray("choices");
            foreach (var (index, choice) in _choices)
            {
                WriteChoice(writer, index, choice);
            }
            writer.WriteEndArray();
            var usage = _usage ?? (meteredUsage is { Estimated: false } metered ? OpenAiUsage.ToJson(metered) : null);
            if (usage is not null)
            {
                writer.WritePropertyName("usage");
                usage.WriteTo(writer);
            }
            writer.WriteEndObject();
        }
        return buffer.WrittenCount > _maxBytes ? null : buffer.WrittenSpan.ToArray();
    }

    private static void WriteChoice(Utf8JsonWriter writer, int index, ChoiceState choice)
    {
        writer.WriteStartObject();
        writer.WriteNumber("index", index);
        writer.WriteStartObject("message");
        writer.WriteString("role", choice.Role ?? "assistant");
        if (choice.Content is not null)
        {
            writer.WriteString("content", choice.Content.ToString());
        }
        else
        {
            writer.WriteNull("content");
        }
        if (choice.Refusal is not null)
        {
            writer.WriteString("refusal", choice.Refusal.ToString());
        }
        else
        {
            writer.WriteNull("refusal");
        }
        if (choice.ToolCalls is { Count: > 0 })
        {
            writer.WriteStartArray("tool_calls");
            foreach (var call in choice.ToolCalls.Values)
            {
                writer.WriteStartObject();
                writer.WriteString("id", call.Id ?? "");
                writer.WriteString("type", call.Type ?? "function");
                writer.WriteStartObject("function");
                writer.WriteString("name", call.Name ?? "");
                writer.WriteString("arguments", call.Arguments.ToString());
                writer.WriteEndObject();
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
        }
        if (choice.FunctionCall is { } functionCall)
        {
            writer.WriteStartObject("function_call");
            writer.WriteString("name", functionCall.Name ?? "");
            writer.WriteString("arguments", functionCall.Arguments.ToString());
            writer.WriteEndObject();
        }
        writer.WriteEndObject();
        if (choice.Logprobs is { } logprobs)
        {
            writer.WriteStartObject("logprobs");
            foreach (var (part, items) in logprobs)
            {
                writer.WriteStartArray(part);
                foreach (var item in items)
                {
                    WriteNode(writer, item);
                }
                writer.WriteEndArray();
            }
            writer.WriteEndObject();
        }
        else
        {
            writer.WriteNull("logprobs");
        }
        writer.WriteString("finish_reason", choice.FinishReason);
        writer.WriteEndObject();
    }

    private static void WriteNode(Utf8JsonWriter writer, JsonNode? node)
    {
        if (node is null)
        {
            writer.WriteNullValue();
        }
        else
        {
            node.WriteTo(writer);
        }
    }

    internal static string? ReadString(JsonNode? node) =>
        node is JsonValue value && value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : null;

    internal static int? ReadInt(JsonNode? node) =>
        node is JsonValue value && value.GetValueKind() == JsonValueKind.Number && value.TryGetValue(out int result) ? result : null;

    private sealed class ChoiceState
    {
        public string? Role;
        public StringBuilder? Content;
        public StringBuilder? Refusal;
        public SortedDictionary<int, ToolCallState>? ToolCalls;
        public ToolCallState? FunctionCall;
        public Dictionary<string, List<JsonNode?>>? Logprobs;
        public string? FinishReason;
    }

    private sealed class ToolCallState
    {
        public string? Id;
        public string? Type;
        public string? Name;
        public readonly StringBuilder Arguments = new();
    }
}
