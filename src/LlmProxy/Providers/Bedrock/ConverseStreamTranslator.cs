using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using LlmProxy.OpenAi;
using LlmProxy.Pipeline;
using LlmProxy.Providers.Bedrock.Wire;

namespace LlmProxy.Providers.Bedrock;

/// <summary>
/// ConverseStream's binary event stream to OpenAI <c>chat.completion.chunk</c>s, event by event as the bytes
/// arrive. The response is complete only once both <c>messageStop</c> and <c>metadata</c> arrived; anything
/// short of that, a malformed frame or an exception event ends the stream with an error event instead.
/// </summary>
internal sealed class ConverseStreamTranslator : IChatStreamTranslator
{
    private readonly ChatRequest _request;
    private readonly string _deploymentId;
    private readonly string _id = ConverseResponseMapping.NewCompletionId();
    private readonly long _created;
    private readonly AwsEventStreamReader _reader = new();
    private readonly Action<AwsEventStreamMessage> _onMessage;

    /// <summary>Bedrock content block index to OpenAI tool call index (0, 1, 2... over tool blocks only).</summary>
    private readonly Dictionary<int, int> _toolIndexByBlock = [];
    private readonly System.Buffers.ArrayBufferWriter<byte> _chunkBuffer = new(512);
    private readonly Utf8JsonWriter _chunkWriter;
    private IChatStreamSink? _sink;
    private bool _roleSent;
    private bool _stopped;
    private bool _metadataSeen;
    private bool _failed;
    private TokenUsage? _usage;

    public ConverseStreamTranslator(ChatRequest request, string deploymentId, TimeProvider time)
    {
        _request = request;
        _deploymentId = deploymentId;
        _created = time.GetUtcNow().ToUnixTimeSeconds();
        _onMessage = OnMessage;
        _chunkWriter = new Utf8JsonWriter(_chunkBuffer, new JsonWriterOptions { SkipValidation = true });
    }

    private bool Completed => _stopped && _metadataSeen;

    public void Process(ReadOnlySpan<byte> upstreamBytes, IChatStreamSink sink)
    {
        if (_failed || Completed)
        {
            return;
        }
        _sink = sink;
        try
        {
            _reader.Feed(upstreamBytes, _onMessage);
        }
        catch (AwsEventStreamFormatException ex) when (!_failed && !Completed)
        {
            // Bytes after an error event or after the end of the response change nothing the client has seen.
            Fail(ProtocolError($"sent a malformed event stream ({ex.Message})"));
        }
        catch (AwsEventStreamFormatException)
        {
        }
    }

    public void Complete(IChatStreamSink sink)
    {
        if (_failed || Completed)
        {
            return;
        }
        _sink = sink;
        Fail(new OpenAiError($"Deployment '{_deploymentId}' ended the stream before it was complete.", "upstream_error", null, "upstream_stream_truncated"));
    }

    private void OnMessage(AwsEventStreamMessage message)
    {
        if (_failed || Completed)
        {
            return;
        }
        switch (message.MessageType)
        {
            case "event":
                try
                {
                    OnEvent(message.GetString(AwsEventStreamMessage.EventTypeHeader), message.Payload.Span);
                }
                catch (JsonException)
                {
                    Fail(ProtocolError($"sent a malformed '{message.GetString(AwsEventStreamMessage.EventTypeHeader)}' event"));
                }
                break;
            case "exception":
                Fail(BedrockErrors.FromStreamException(message.GetString(AwsEventStreamMessage.ExceptionTypeHeader), message.Payload.Span,
                    _deploymentId, _request.Model));
                break;
            case "error":
                // Event-stream protocol errors carry their code and message in headers.
                Fail(BedrockErrors.FromStreamException(message.GetString(AwsEventStreamMessage.ErrorCodeHeader), default, _deploymentId, _request.Model));
                break;
            default:
                Fail(ProtocolError($"sent an event-stream message of unknown type '{message.MessageType}'"));
                break;
        }
    }

    private void OnEvent(string? eventType, ReadOnlySpan<byte> payload)
    {
        switch (eventType)
        {
            case "messageStart":
                SendRole();
                break;

            case "contentBlockStart":
                var start = Parse(payload, BedrockJsonContext.Default.ContentBlockStartEvent);
                if (start.Start?.ToolUse is { } toolUse)
                {
                    SendRole();
                    var index = _toolIndexByBlock.Count;
                    _toolIndexByBlock[start.ContentBlockIndex] = index;
                    Send(Delta(new JsonObject
                    {
                        ["tool_calls"] = new JsonArray(new JsonObject
                        {
                            ["index"] = index,
                            ["id"] = toolUse.ToolUseId,
                            ["type"] = "function",
                            ["function"] = new JsonObject { ["name"] = toolUse.Name, ["arguments"] = "" },
                        }),
                    }));
                }
                break;

            case "contentBlockDelta":
                var delta = Parse(payload, BedrockJsonContext.Default.ContentBlockDeltaEvent);
                if (delta.Delta?.Text is { } text)
                {
                    SendRole();
                    Send(Delta(new JsonObject { ["content"] = text }));
                }
                else if (delta.Delta?.ToolUse is { } toolDelta)
                {
                    if (!_toolIndexByBlock.TryGetValue(delta.ContentBlockIndex, out var toolIndex))
                    {
                        Fail(ProtocolError($"sent tool input for content block {delta.ContentBlockIndex}, which did not start as a tool use"));
                        return;
                    }
                    Send(Delta(new JsonObject
                    {
                        ["tool_calls"] = new JsonArray(new JsonObject
                        {
                            ["index"] = toolIndex,
                            ["function"] = new JsonObject { ["arguments"] = toolDelta.Input ?? "" },
                        }),
                    }));
                }
                // Reasoning and citation deltas have no place in chat.completion chunks.
                break;

            case "messageStop":
                var stop = Parse(payload, BedrockJsonContext.Default.MessageStopEvent);
                SendRole();
                Send(Chunk(new JsonObject(), ConverseResponseMapping.ToFinishReason(stop.StopReason)));
                _stopped = true;
                SendUsage();
                break;

            case "metadata":
                var metadata = Parse(payload, BedrockJsonContext.Default.ConverseStreamMetadataEvent);
                if (metadata.Usage is { } usage)
                {
                    _usage = ConverseResponseMapping.ToTokenUsage(usage);
                    _sink!.Usage(_usage);
                }
                _metadataSeen = true;
                SendUsage();
                break;

            // contentBlockStop says nothing a client needs; unknown events are newer than this code.
        }
    }

    private static T Parse<T>(ReadOnlySpan<byte> payload, JsonTypeInfo<T> type) =>
        JsonSerializer.Deserialize(payload, type) ?? throw new JsonException("null event payload");

    private void SendRole()
    {
        if (!_roleSent)
        {
            _roleSent = true;
            Send(Delta(new JsonObject { ["role"] = "assistant", ["content"] = "" }));
        }
    }

    /// <summary>The usage chunk goes last, after the finish chunk, and only to clients that asked for it.</summary>
    private void SendUsage()
    {
        if (Completed && _usage is not null && _request.IncludeUsage)
        {
            var chunk = Envelope();
            chunk["choices"] = new JsonArray();
            chunk["usage"] = ConverseResponseMapping.ToJson(_usage);
            Send(chunk);
        }
    }

    private JsonObject Delta(JsonObject delta) => Chunk(delta, finishReason: null);

    private JsonObject Chunk(JsonObject delta, string? finishReason)
    {
        var chunk = Envelope();
        chunk["choices"] = new JsonArray(new JsonObject
        {
            ["index"] = 0,
            ["delta"] = delta,
            ["logprobs"] = null,
            ["finish_reason"] = finishReason,
        });
        if (_request.IncludeUsage)
        {
            chunk["usage"] = null; // as OpenAI does: every chunk but the last carries "usage": null
        }
        return chunk;
    }

    private JsonObject Envelope() => new()
    {
        ["id"] = _id,
        ["object"] = "chat.completion.chunk",
        ["created"] = _created,
        ["model"] = _request.Model,
    };

    private void Send(JsonObject chunk)
    {
        _chunkBuffer.ResetWrittenCount();
        _chunkWriter.Reset(_chunkBuffer);
        chunk.WriteTo(_chunkWriter);
        _chunkWriter.Flush();
        _sink!.Chunk(_chunkBuffer.WrittenSpan);
    }

    private OpenAiError ProtocolError(string what) =>
        new($"Deployment '{_deploymentId}' {what}.", "upstream_error", null, "upstream_protocol_error");

    private void Fail(OpenAiError error)
    {
        _failed = true;
        _sink!.Error(error);
    }
}
