using System.Buffers;
using System.Text.Json;
using LlmProxy.Simulator.OpenAi;

namespace LlmProxy.Simulator.Bedrock;

/// <summary>Writes a <c>ConverseResponse</c>: output message, stop reason, usage and metrics.</summary>
internal static class ConverseJson
{
    public static byte[] Write(ConverseReply reply, long latencyMs)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var writer = new Utf8JsonWriter(buffer, WireJson.WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteStartObject("output");
            writer.WriteStartObject("message");
            writer.WriteString("role", "assistant");
            writer.WriteStartArray("content");
            foreach (var block in reply.Content)
            {
                WriteBlock(writer, block);
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
            writer.WriteEndObject();
            writer.WriteString("stopReason", reply.StopReason);
            WriteUsage(writer, reply);
            WriteMetrics(writer, latencyMs);
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary><c>"usage":{"inputTokens","outputTokens","totalTokens"}</c>; shared with the stream's metadata event.</summary>
    public static void WriteUsage(Utf8JsonWriter writer, ConverseReply reply)
    {
        writer.WriteStartObject("usage");
        writer.WriteNumber("inputTokens", reply.InputTokens);
        writer.WriteNumber("outputTokens", reply.OutputTokens);
        writer.WriteNumber("totalTokens", reply.TotalTokens);
        writer.WriteEndObject();
    }

    public static void WriteMetrics(Utf8JsonWriter writer, long latencyMs)
    {
        writer.WriteStartObject("metrics");
        writer.WriteNumber("latencyMs", latencyMs);
        writer.WriteEndObject();
    }

    private static void WriteBlock(Utf8JsonWriter writer, ConverseBlock block)
    {
        writer.WriteStartObject();
        switch (block)
        {
            case ConverseTextBlock text:
                writer.WriteString("text", text.Text);
                break;
            case ConverseToolUseBlock toolUse:
                writer.WriteStartObject("toolUse");
                writer.WriteString("toolUseId", toolUse.ToolUseId);
                writer.WriteString("name", toolUse.Name);
                writer.WritePropertyName("input");
                writer.WriteRawValue(toolUse.Input);
                writer.WriteEndObject();
                break;
        }

        writer.WriteEndObject();
    }
}
