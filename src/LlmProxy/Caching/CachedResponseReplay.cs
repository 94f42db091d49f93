using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace LlmProxy.Caching;

/// <summary>
/// Turns a stored <c>chat.completion</c> into the <c>chat.completion.chunk</c>s of a stream with the same content:
/// per choice, one chunk with the role, content and refusal (and log probabilities), one chunk per tool call with
/// its id, name and whole arguments, and one chunk with the finish reason; then, if the client asked for it
/// (<c>stream_options.include_usage</c>), the usage chunk with no choices.
/// </summary>
internal static class CachedResponseReplay
{
    private static readonly JsonWriterOptions WriterOptions = new() { SkipValidation = true };

    /// <exception cref="JsonException">The stored body is not a chat completion.</exception>
    public static List<JsonObject> ToChunks(ReadOnlySpan<byte> completionJson, bool includeUsage)
    {
        if (JsonNode.Parse(completionJson) is not JsonObject completion || completion["choices"] is not JsonArray choices)
        {
            throw new JsonException("The cached entry is not a chat completion.");
        }

        var chunks = new List<JsonObject>(choices.Count * 3 + 1);
        for (var position = 0; position < choices.Count; position++)
        {
            if (choices[position] is not JsonObject choice)
            {
                continue;
            }
            var index = StreamAssembler.ReadInt(choice["index"]) ?? position;
            var message = choice["message"] as JsonObject ?? [];

            var delta = new JsonObject { ["role"] = message["role"]?.DeepClone() ?? "assistant" };
            if (message["content"] is JsonValue content && content.GetValueKind() == JsonValueKind.String)
            {
                delta["content"] = content.DeepClone();
            }
            if (message["refusal"] is JsonValue refusal && refusal.GetValueKind() == JsonValueKind.String)
            {
                delta["refusal"] = refusal.DeepClone();
            }
            chunks.Add(Chunk(completion, index, delta, choice["logprobs"] is JsonObject logprobs ? logprobs.DeepClone() : null, finishReason: null));

            if (message["tool_calls"] is JsonArray toolCalls)
            {
                for (var i = 0; i < toolCalls.Count; i++)
                {
                    if (toolCalls[i] is not JsonObject call)
                    {
                        continue;
                    }
                    var streamed = new JsonObject { ["index"] = i };
                    foreach (var (name, value) in call)
                    {
                        streamed[name] = value?.DeepClone();
                    }
                    chunks.Add(Chunk(completion, index, new JsonObject { ["tool_calls"] = new JsonArray(streamed) }, null, null));
                }
            }
            if (message["function_call"] is JsonObject functionCall)
            {
                chunks.Add(Chunk(completion, index, new JsonObject { ["function_call"] = functionCall.DeepClone() }, null, null));
            }

            chunks.Add(Chunk(completion, index, [], null, choice["finish_reason"]?.DeepClone()));
        }

        if (includeUsage && completion["usage"] is JsonObject usage)
        {
            var usageChunk = Header(completion);
            usageChunk["choices"] = new JsonArray();
            usageChunk["usage"] = usage.DeepClone();
            chunks.Add(usageChunk);
        }
        return chunks;
    }

    /// <summary>
    /// Writes the chunks as server-sent events followed by <c>data: [DONE]</c>; returns where each chunk's JSON text lies in
    /// <paramref name="output"/>'s written bytes (for observers, which see chunks as JSON text).
    /// </summary>
    public static Range[] WriteEvents(IReadOnlyList<JsonObject> chunks, ArrayBufferWriter<byte> output)
    {
        var ranges = new Range[chunks.Count];
        using var writer = new Utf8JsonWriter(output, WriterOptions);
        for (var i = 0; i < chunks.Count; i++)
        {
            output.Write("data: "u8);
            var start = output.WrittenCount;
            writer.Reset(output);
            chunks[i].WriteTo(writer);
            writer.Flush();
            ranges[i] = start..output.WrittenCount;
            output.Write("\n\n"u8);
        }
        output.Write("data: [DONE]\n\n"u8);
        return ranges;
    }

    private static JsonObject Chunk(JsonObject completion, int index, JsonObject delta, JsonNode? logprobs, JsonNode? finishReason)
    {
        var chunk = Header(completion);
        chunk["choices"] = new JsonArray(new JsonObject
        {
            ["index"] = index,
            ["delta"] = delta,
            ["logprobs"] = logprobs,
            ["finish_reason"] = finishReason,
        });
        return chunk;
    }

    private static JsonObject Header(JsonObject completion)
    {
        var chunk = new JsonObject
        {
            ["id"] = completion["id"]?.DeepClone(),
            ["object"] = "chat.completion.chunk",
            ["created"] = completion["created"]?.DeepClone(),
            ["model"] = completion["model"]?.DeepClone(),
        };
        if (completion["system_fingerprint"] is { } fingerprint)
        {
            chunk["system_fingerprint"] = fingerprint.DeepClone();
        }
        if (completion["service_tier"] is { } tier)
        {
            chunk["service_tier"] = tier.DeepClone();
        }
        return chunk;
    }
}
