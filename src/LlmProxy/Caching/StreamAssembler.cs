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

    /// <summary>
    /// Folds one chunk, given as its JSON text, into the response. Read forward-only without a JSON tree; only the values
    /// kept whole (created, fingerprint, service tier, usage, log probabilities) become nodes. A chunk that is not valid
    /// JSON makes the response unstorable.
    /// </summary>
    public void Add(ReadOnlySpan<byte> chunkJson)
    {
        if (TooLarge)
        {
            return;
        }
        try
        {
            var reader = new Utf8JsonReader(chunkJson);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return;
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("id"u8))
                {
                    reader.Read();
                    ReadStringOnce(ref reader, ref _id);
                }
                else if (reader.ValueTextEquals("created"u8))
                {
                    reader.Read();
                    _created ??= ReadNode(ref reader);
                    reader.Skip();
                }
                else if (reader.ValueTextEquals("model"u8))
                {
                    reader.Read();
                    ReadStringOnce(ref reader, ref _model);
                }
                else if (reader.ValueTextEquals("system_fingerprint"u8))
                {
                    reader.Read();
                    if (_systemFingerprint is null && reader.TokenType == JsonTokenType.String)
                    {
                        _systemFingerprint = JsonValue.Create(reader.GetString());
                    }
                    reader.Skip();
                }
                else if (reader.ValueTextEquals("service_tier"u8))
                {
                    reader.Read();
                    if (_serviceTier is null && reader.TokenType == JsonTokenType.String)
                    {
                        _serviceTier = JsonValue.Create(reader.GetString());
                    }
                    reader.Skip();
                }
                else if (reader.ValueTextEquals("usage"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.StartObject)
                    {
                        _usage = JsonNode.Parse(ref reader);
                    }
                    else
                    {
                        reader.Skip();
                    }
                }
                else if (reader.ValueTextEquals("choices"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.StartArray)
                    {
                        AddChoices(ref reader);
                    }
                    else
                    {
                        reader.Skip();
                    }
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
        }
        catch (JsonException)
        {
            // Not what the client was sent as a chunk: do not store a response assembled from it.
            TooLarge = true;
            _choices.Clear();
            return;
        }
        if (_bytes > _maxBytes)
        {
            TooLarge = true;
            _choices.Clear();
        }
    }

    private void AddChoices(ref Utf8JsonReader reader)
    {
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                reader.Skip();
                continue;
            }
            var index = FindInt(reader, "index"u8) ?? 0;
            if (!_choices.TryGetValue(index, out var state))
            {
                _choices[index] = state = new ChoiceState();
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("delta"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.StartObject)
                    {
                        AddDelta(state, ref reader);
                    }
                    else
                    {
                        reader.Skip();
                    }
                }
                else if (reader.ValueTextEquals("logprobs"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.StartObject)
                    {
                        AddLogprobs(state, ref reader);
                    }
                    else
                    {
                        reader.Skip();
                    }
                }
                else if (reader.ValueTextEquals("finish_reason"u8))
                {
                    reader.Read();
                    if (ReadString(ref reader) is { } finishReason)
                    {
                        state.FinishReason = finishReason;
                    }
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
        }
    }

    private void AddDelta(ChoiceState state, ref Utf8JsonReader reader)
    {
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("role"u8))
            {
                reader.Read();
                ReadStringOnce(ref reader, ref state.Role);
            }
            else if (reader.ValueTextEquals("content"u8))
            {
                reader.Read();
                _bytes += AppendString(ref reader, ref state.Content);
            }
            else if (reader.ValueTextEquals("refusal"u8))
            {
                reader.Read();
                _bytes += AppendString(ref reader, ref state.Refusal);
            }
            else if (reader.ValueTextEquals("tool_calls"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.StartArray)
                {
                    state.ToolCalls ??= [];
                    var position = 0;
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    {
                        if (reader.TokenType == JsonTokenType.StartObject)
                        {
                            AddToolCall(state.ToolCalls, FindInt(reader, "index"u8) ?? position, ref reader);
                        }
                        else
                        {
                            reader.Skip();
                        }
                        position++;
                    }
                }
                else
                {
                    reader.Skip();
                }
            }
            else if (reader.ValueTextEquals("function_call"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.StartObject)
                {
                    state.FunctionCall ??= new ToolCallState();
                    AddFunction(state.FunctionCall, ref reader);
                }
                else
                {
                    reader.Skip();
                }
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
    }

    private void AddToolCall(SortedDictionary<int, ToolCallState> calls, int index, ref Utf8JsonReader reader)
    {
        if (!calls.TryGetValue(index, out var merged))
        {
            calls[index] = merged = new ToolCallState();
        }
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("id"u8))
            {
                reader.Read();
                ReadStringOnce(ref reader, ref merged.Id);
            }
            else if (reader.ValueTextEquals("type"u8))
            {
                reader.Read();
                ReadStringOnce(ref reader, ref merged.Type);
            }
            else if (reader.ValueTextEquals("function"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.StartObject)
                {
                    AddFunction(merged, ref reader);
                }
                else
                {
                    reader.Skip();
                }
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
        _bytes += 64;
    }

    private void AddFunction(ToolCallState call, ref Utf8JsonReader reader)
    {
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("name"u8))
            {
                reader.Read();
                ReadStringOnce(ref reader, ref call.Name);
            }
            else if (reader.ValueTextEquals("arguments"u8))
            {
                reader.Read();
                StringBuilder? arguments = call.Arguments;
                _bytes += AppendString(ref reader, ref arguments);
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
    }

    private void AddLogprobs(ChoiceState state, ref Utf8JsonReader reader)
    {
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var part = reader.ValueTextEquals("content"u8) ? "content" : reader.ValueTextEquals("refusal"u8) ? "refusal" : null;
            reader.Read();
            if (part is null || reader.TokenType != JsonTokenType.StartArray)
            {
                reader.Skip();
                continue;
            }
            state.Logprobs ??= [];
            if (!state.Logprobs.TryGetValue(part, out var list))
            {
                state.Logprobs[part] = list = [];
            }
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                list.Add(ReadNode(ref reader));
                _bytes += 128;
            }
        }
    }

    /// <summary>The value the reader is on as a node (null for JSON null); the reader is left on its last token.</summary>
    private static JsonNode? ReadNode(ref Utf8JsonReader reader) =>
        reader.TokenType == JsonTokenType.Null ? null : JsonNode.Parse(ref reader);

    /// <summary>The string value the reader is on, or null for any other value (which is skipped).</summary>
    private static string? ReadString(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.String)
        {
            return reader.GetString();
        }
        reader.Skip();
        return null;
    }

    /// <summary>Sets <paramref name="target"/> from the string value the reader is on unless it is set already; skips the value either way.</summary>
    private static void ReadStringOnce(ref Utf8JsonReader reader, ref string? target)
    {
        if (target is null)
        {
            target = ReadString(ref reader);
        }
        else
        {
            reader.Skip();
        }
    }

    /// <summary>Appends the string value the reader is on to <paramref name="builder"/> (created when needed); returns the characters added.</summary>
    private static int AppendString(ref Utf8JsonReader reader, ref StringBuilder? builder)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            reader.Skip();
            return 0;
        }
        builder ??= new StringBuilder();
        var length = reader.HasValueSequence ? checked((int)reader.ValueSequence.Length) : reader.ValueSpan.Length;
        char[]? rented = null;
        var buffer = length <= 256 ? stackalloc char[256] : (rented = ArrayPool<char>.Shared.Rent(length));
        var written = reader.CopyString(buffer);
        builder.Append(buffer[..written]);
        if (rented is not null)
        {
            ArrayPool<char>.Shared.Return(rented);
        }
        return written;
    }

    /// <summary>An integer property of the object the reader is on (a copy: the caller's reader does not move).</summary>
    private static int? FindInt(Utf8JsonReader reader, ReadOnlySpan<byte> name)
    {
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var found = reader.ValueTextEquals(name);
            reader.Read();
            if (found)
            {
                return reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var value) ? value : null;
            }
            reader.Skip();
        }
        return null;
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
