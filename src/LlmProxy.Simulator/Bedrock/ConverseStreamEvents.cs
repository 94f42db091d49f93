using System.Buffers;
using System.Text.Json;
using Amazon.Runtime.EventStreams;
using LlmProxy.Simulator.ChatCompletions;
using LlmProxy.Simulator.OpenAi;

namespace LlmProxy.Simulator.Bedrock;

/// <summary>One event of a <c>ConverseStreamOutput</c>: the union member it is (<c>:event-type</c>) and its JSON payload.</summary>
internal sealed record ConverseStreamEvent(string EventType, byte[] Payload);

/// <summary>
/// Turns a simulated reply into the events Bedrock's ConverseStream sends, in order: <c>messageStart</c>; per content
/// block, <c>contentBlockStart</c> (tool use only: id and name), <c>contentBlockDelta</c>s (a text block one word per
/// delta; a tool input as JSON fragments of at most 8 characters), <c>contentBlockStop</c>; <c>messageStop</c> with the
/// stop reason; last <c>metadata</c> with usage and latency. Every payload carries a <c>p</c> padding field, as Bedrock's
/// do to hide payload sizes; clients ignore it. Messages are encoded with AWS's own event-stream codec (AWSSDK.Core).
/// </summary>
internal static class ConverseStreamEvents
{
    internal const string PaddingAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

    /// <summary>Every event up to and including <c>messageStop</c>; <see cref="Metadata"/> follows them once the latency is known.</summary>
    public static IReadOnlyList<ConverseStreamEvent> Build(ConverseReply reply)
    {
        var events = new List<ConverseStreamEvent>();
        void Add(string type, Action<Utf8JsonWriter> write) => events.Add(new(type, Payload(write, events.Count)));

        Add("messageStart", writer => writer.WriteString("role", "assistant"));
        for (var index = 0; index < reply.Content.Count; index++)
        {
            var blockIndex = index;
            switch (reply.Content[index])
            {
                case ConverseTextBlock text:
                    foreach (var token in text.Tokens)
                    {
                        Add("contentBlockDelta", writer =>
                        {
                            writer.WriteNumber("contentBlockIndex", blockIndex);
                            writer.WriteStartObject("delta");
                            writer.WriteString("text", token);
                            writer.WriteEndObject();
                        });
                    }

                    break;
                case ConverseToolUseBlock toolUse:
                    Add("contentBlockStart", writer =>
                    {
                        writer.WriteNumber("contentBlockIndex", blockIndex);
                        writer.WriteStartObject("start");
                        writer.WriteStartObject("toolUse");
                        writer.WriteString("toolUseId", toolUse.ToolUseId);
                        writer.WriteString("name", toolUse.Name);
                        writer.WriteEndObject();
                        writer.WriteEndObject();
                    });
                    foreach (var fragment in ChatCompletionChunks.SplitArguments(toolUse.Input))
                    {
                        Add("contentBlockDelta", writer =>
                        {
                            writer.WriteNumber("contentBlockIndex", blockIndex);
                            writer.WriteStartObject("delta");
                            writer.WriteStartObject("toolUse");
                            writer.WriteString("input", fragment);
                            writer.WriteEndObject();
                            writer.WriteEndObject();
                        });
                    }

                    break;
            }

            Add("contentBlockStop", writer => writer.WriteNumber("contentBlockIndex", blockIndex));
        }

        Add("messageStop", writer => writer.WriteString("stopReason", reply.StopReason));
        return events;
    }

    /// <summary>The closing <c>metadata</c> event; <paramref name="position"/> is how many events came before it.</summary>
    public static ConverseStreamEvent Metadata(ConverseReply reply, long latencyMs, int position) =>
        new("metadata", Payload(writer =>
        {
            ConverseJson.WriteUsage(writer, reply);
            ConverseJson.WriteMetrics(writer, latencyMs);
        }, position));

    /// <summary>An event message: <c>:event-type</c>, <c>:content-type: application/json</c>, <c>:message-type: event</c>.</summary>
    public static byte[] Encode(ConverseStreamEvent streamEvent) => Message(
        [Header(":event-type", streamEvent.EventType), Header(":content-type", "application/json"), Header(":message-type", "event")],
        streamEvent.Payload);

    /// <summary>
    /// An exception message, the way a stream reports a failure after it started: <c>:exception-type</c> names the member of
    /// the output union (<c>throttlingException</c>, <c>modelStreamErrorException</c>, ...), the payload is <c>{"message":...}</c>.
    /// </summary>
    public static byte[] EncodeException(string exceptionType, BedrockError error) => Message(
        [Header(":exception-type", exceptionType), Header(":content-type", "application/json"), Header(":message-type", "exception")],
        error.ToUtf8Json());

    private static byte[] Message(List<IEventStreamHeader> headers, byte[] payload) => new EventStreamMessage(headers, payload).ToByteArray();

    private static EventStreamHeader Header(string name, string value)
    {
        var header = new EventStreamHeader(name);
        header.SetString(value);
        return header;
    }

    private static byte[] Payload(Action<Utf8JsonWriter> write, int position)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var writer = new Utf8JsonWriter(buffer, WireJson.WriterOptions))
        {
            writer.WriteStartObject();
            write(writer);
            writer.WriteString("p", Padding(position));
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>A prefix of the alphabet whose length varies from event to event, deterministically.</summary>
    internal static string Padding(int position) => PaddingAlphabet[..(1 + (position * 7 % PaddingAlphabet.Length))];
}
