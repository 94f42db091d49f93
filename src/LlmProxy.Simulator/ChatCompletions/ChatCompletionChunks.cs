using System.Buffers;
using System.Text.Json;
using LlmProxy.Simulator.OpenAi;

namespace LlmProxy.Simulator.ChatCompletions;

/// <summary>
/// Turns a simulated reply into the <c>chat.completion.chunk</c> objects OpenAI would stream, in order:
/// per choice a role delta, then content deltas (one word each) or tool-call deltas (a header with id, type,
/// name and empty arguments, then argument fragments), then an empty delta with the finish reason; choices
/// are interleaved as a real <c>n &gt; 1</c> stream is; last, when asked for, the usage chunk with no choices.
/// </summary>
internal static class ChatCompletionChunks
{
    /// <summary>Argument fragments are this many characters at most, so every call's arguments span several chunks.</summary>
    internal const int ArgumentFragmentLength = 8;

    public static IReadOnlyList<byte[]> Build(CompletionIdentity identity, SimulatedReply reply, bool includeUsage)
    {
        var perChoice = reply.Choices.Select(choice => ChoiceChunks(identity, choice, includeUsage).ToList()).ToList();

        var chunks = new List<byte[]>();
        for (var position = 0; perChoice.Any(list => position < list.Count); position++)
        {
            foreach (var list in perChoice.Where(list => position < list.Count))
            {
                chunks.Add(list[position]);
            }
        }

        if (includeUsage)
        {
            chunks.Add(Chunk(identity, includeUsage, writeChoices: null, usage: reply));
        }

        return chunks;
    }

    /// <summary>Splits tool-call arguments into the fragments a stream carries; concatenated, they give the arguments back.</summary>
    internal static IReadOnlyList<string> SplitArguments(string arguments)
    {
        var fragments = new List<string>();
        for (var start = 0; start < arguments.Length;)
        {
            var length = Math.Min(ArgumentFragmentLength, arguments.Length - start);
            // Never cut a surrogate pair in two: each fragment must be valid UTF-16 on its own to be valid JSON.
            if (start + length < arguments.Length && char.IsHighSurrogate(arguments[start + length - 1]))
            {
                length++;
            }

            fragments.Add(arguments.Substring(start, length));
            start += length;
        }

        return fragments;
    }

    private static IEnumerable<byte[]> ChoiceChunks(CompletionIdentity identity, SimulatedChoice choice, bool includeUsage)
    {
        var isToolCall = choice.ToolCalls.Count > 0;
        yield return ChoiceChunk(identity, includeUsage, choice.Index, finishReason: null, delta =>
        {
            delta.WriteString("role", "assistant");
            if (isToolCall)
            {
                delta.WriteNull("content");
            }
            else
            {
                delta.WriteString("content", string.Empty);
            }

            delta.WriteNull("refusal");
        });

        foreach (var token in choice.ContentTokens ?? [])
        {
            yield return ChoiceChunk(identity, includeUsage, choice.Index, finishReason: null, delta => delta.WriteString("content", token));
        }

        for (var callIndex = 0; callIndex < choice.ToolCalls.Count; callIndex++)
        {
            var call = choice.ToolCalls[callIndex];
            var index = callIndex;
            yield return ChoiceChunk(identity, includeUsage, choice.Index, finishReason: null, delta =>
                WriteToolCallDelta(delta, index, call.Id, call.Name, string.Empty));

            foreach (var fragment in SplitArguments(call.Arguments))
            {
                yield return ChoiceChunk(identity, includeUsage, choice.Index, finishReason: null, delta =>
                    WriteToolCallDelta(delta, index, id: null, name: null, fragment));
            }
        }

        yield return ChoiceChunk(identity, includeUsage, choice.Index, choice.FinishReason, _ => { });
    }

    /// <summary>A tool-call delta: the first of a call names it (id, type, name); the rest carry only argument text.</summary>
    private static void WriteToolCallDelta(Utf8JsonWriter delta, int index, string? id, string? name, string arguments)
    {
        delta.WriteStartArray("tool_calls");
        delta.WriteStartObject();
        delta.WriteNumber("index", index);
        if (id is not null)
        {
            delta.WriteString("id", id);
            delta.WriteString("type", "function");
        }

        delta.WriteStartObject("function");
        if (name is not null)
        {
            delta.WriteString("name", name);
        }

        delta.WriteString("arguments", arguments);
        delta.WriteEndObject();
        delta.WriteEndObject();
        delta.WriteEndArray();
    }

    private static byte[] ChoiceChunk(CompletionIdentity identity, bool includeUsage, int choiceIndex, string? finishReason, Action<Utf8JsonWriter> writeDelta) =>
        Chunk(identity, includeUsage, writer =>
        {
            writer.WriteStartObject();
            writer.WriteNumber("index", choiceIndex);
            writer.WriteStartObject("delta");
            writeDelta(writer);
            writer.WriteEndObject();
            writer.WriteNull("logprobs");
            if (finishReason is null)
            {
                writer.WriteNull("finish_reason");
            }
            else
            {
                writer.WriteString("finish_reason", finishReason);
            }

            writer.WriteEndObject();
        }, usage: null);

    /// <summary>
    /// One chunk object. With <c>include_usage</c>, every chunk has a <c>usage</c> field: null except on the
    /// final one, whose <c>choices</c> is empty; without it the field is absent, as in OpenAI's streams.
    /// </summary>
    private static byte[] Chunk(CompletionIdentity identity, bool includeUsage, Action<Utf8JsonWriter>? writeChoices, SimulatedReply? usage)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, WireJson.WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("id", identity.Id);
            writer.WriteString("object", "chat.completion.chunk");
            writer.WriteNumber("created", identity.Created);
            writer.WriteString("model", identity.Model);
            writer.WriteString("service_tier", "default");
            writer.WriteString("system_fingerprint", identity.SystemFingerprint);
            writer.WriteStartArray("choices");
            writeChoices?.Invoke(writer);
            writer.WriteEndArray();
            if (includeUsage)
            {
                writer.WritePropertyName("usage");
                if (usage is null)
                {
                    writer.WriteNullValue();
                }
                else
                {
                    ChatCompletionJson.WriteUsage(writer, usage);
                }
            }

            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }
}
