using System.Buffers;
using System.Text.Json;
using LlmProxy.Simulator.OpenAi;

namespace LlmProxy.Simulator.ChatCompletions;

/// <summary>Writes a <c>CreateChatCompletionResponse</c> (the non-streamed answer) with every field OpenAI sends, nulls included.</summary>
internal static class ChatCompletionJson
{
    public static byte[] Write(CompletionIdentity identity, SimulatedReply reply)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var writer = new Utf8JsonWriter(buffer, WireJson.WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("id", identity.Id);
            writer.WriteString("object", "chat.completion");
            writer.WriteNumber("created", identity.Created);
            writer.WriteString("model", identity.Model);
            writer.WriteStartArray("choices");
            foreach (var choice in reply.Choices)
            {
                WriteChoice(writer, choice);
            }

            writer.WriteEndArray();
            writer.WritePropertyName("usage");
            WriteUsage(writer, reply);
            writer.WriteString("service_tier", "default");
            writer.WriteString("system_fingerprint", identity.SystemFingerprint);
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Writes a <c>CompletionUsage</c>; shared with the final usage chunk of a stream.</summary>
    public static void WriteUsage(Utf8JsonWriter writer, SimulatedReply reply)
    {
        writer.WriteStartObject();
        writer.WriteNumber("prompt_tokens", reply.PromptTokens);
        writer.WriteNumber("completion_tokens", reply.CompletionTokens);
        writer.WriteNumber("total_tokens", reply.TotalTokens);
        writer.WriteStartObject("prompt_tokens_details");
        writer.WriteNumber("cached_tokens", 0);
        writer.WriteNumber("audio_tokens", 0);
        writer.WriteEndObject();
        writer.WriteStartObject("completion_tokens_details");
        writer.WriteNumber("reasoning_tokens", 0);
        writer.WriteNumber("audio_tokens", 0);
        writer.WriteNumber("accepted_prediction_tokens", 0);
        writer.WriteNumber("rejected_prediction_tokens", 0);
        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    private static void WriteChoice(Utf8JsonWriter writer, SimulatedChoice choice)
    {
        writer.WriteStartObject();
        writer.WriteNumber("index", choice.Index);
        writer.WriteStartObject("message");
        writer.WriteString("role", "assistant");
        if (choice.Content is { } content)
        {
            writer.WriteString("content", content);
        }
        else
        {
            writer.WriteNull("content");
        }

        writer.WriteNull("refusal");
        if (choice.ToolCalls.Count > 0)
        {
            writer.WriteStartArray("tool_calls");
            foreach (var call in choice.ToolCalls)
            {
                writer.WriteStartObject();
                writer.WriteString("id", call.Id);
                writer.WriteString("type", "function");
                writer.WriteStartObject("function");
                writer.WriteString("name", call.Name);
                writer.WriteString("arguments", call.Arguments);
                writer.WriteEndObject();
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
        }

        writer.WriteStartArray("annotations");
        writer.WriteEndArray();
        writer.WriteEndObject();
        writer.WriteNull("logprobs");
        writer.WriteString("finish_reason", choice.FinishReason);
        writer.WriteEndObject();
    }
}
