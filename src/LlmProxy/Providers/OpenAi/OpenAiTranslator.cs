using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;
using LlmProxy.OpenAi;
using LlmProxy.Pipeline;
using LlmProxy.Routing;
using LlmProxy.ServerSentEvents;

namespace LlmProxy.Providers.OpenAi;

/// <summary>
/// OpenAI client API to an OpenAI-compatible upstream: the body passes through with the model renamed
/// to the upstream's id, and back with the client's model name. For streams the gateway always asks the
/// upstream for usage (so that every stream can be metered) and hides the usage chunk again from clients
/// that did not ask for it.
/// </summary>
internal sealed class OpenAiTranslator(ChatRequest request, Deployment deployment) : IChatTranslator
{
    public UpstreamRequest TranslateRequest()
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            var wroteStreamOptions = false;
            foreach (var (name, value) in request.Body)
            {
                switch (name)
                {
                    case "model":
                        writer.WriteString("model", deployment.UpstreamModel);
                        break;
                    case "stream_options" when request.Stream:
                        WriteStreamOptions(writer, value as JsonObject);
                        wroteStreamOptions = true;
                        break;
                    default:
                        writer.WritePropertyName(name);
                        if (value is null)
                        {
                            writer.WriteNullValue();
                        }
                        else
                        {
                            value.WriteTo(writer);
                        }
                        break;
                }
            }
            if (request.Stream && !wroteStreamOptions)
            {
                WriteStreamOptions(writer, null);
            }
            writer.WriteEndObject();
        }
        return new UpstreamRequest("/chat/completions", buffer.WrittenMemory);
    }

    private static void WriteStreamOptions(Utf8JsonWriter writer, JsonObject? clientOptions)
    {
        writer.WritePropertyName("stream_options");
        writer.WriteStartObject();
        if (clientOptions is not null)
        {
            foreach (var (name, value) in clientOptions)
            {
                if (name == "include_usage")
                {
                    continue;
                }
                writer.WritePropertyName(name);
                if (value is null)
                {
                    writer.WriteNullValue();
                }
                else
                {
                    value.WriteTo(writer);
                }
            }
        }
        writer.WriteBoolean("include_usage", true);
        writer.WriteEndObject();
    }

    /// <summary>
    /// The upstream's completion with the client's model name in place of the upstream's. The body is read once with a
    /// <see cref="Utf8JsonReader"/> (which validates it) and copied with only the top-level <c>model</c> value replaced:
    /// building a JSON DOM of it and serializing that again was the largest allocation left on the non-streamed path.
    /// </summary>
    public TranslatedResponse TranslateResponse(ReadOnlySpan<byte> upstreamBody)
    {
        int modelStart = -1, modelEnd = -1, objectEnd;
        TokenUsage? usage = null;
        try
        {
            var reader = new Utf8JsonReader(upstreamBody);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                throw new JsonException("not an object");
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isModel = reader.ValueTextEquals("model"u8);
                var isUsage = !isModel && reader.ValueTextEquals("usage"u8);
                reader.Read();
                var valueStart = (int)reader.TokenStartIndex;
                if (isUsage)
                {
                    usage = OpenAiUsage.Read(ref reader);
                }
                else
                {
                    reader.Skip();
                }
                if (isModel)
                {
                    if (modelStart >= 0)
                    {
                        throw new JsonException("duplicate model");
                    }
                    modelStart = valueStart;
                    modelEnd = (int)reader.BytesConsumed;
                }
            }
            objectEnd = (int)reader.TokenStartIndex;
            if (reader.Read())
            {
                throw new JsonException("content after the object");
            }
        }
        catch (JsonException)
        {
            throw new UpstreamProtocolException($"Deployment '{deployment.Id}' returned a response that is not a chat completion.");
        }

        var model = JsonEncodedText.Encode(request.Model).EncodedUtf8Bytes;
        byte[] body;
        if (modelStart >= 0)
        {
            body = new byte[modelStart + model.Length + 2 + upstreamBody.Length - modelEnd];
            var rest = body.AsSpan();
            Append(ref rest, upstreamBody[..modelStart]);
            Append(ref rest, "\""u8);
            Append(ref rest, model);
            Append(ref rest, "\""u8);
            Append(ref rest, upstreamBody[modelEnd..]);
        }
        else
        {
            // No model in the completion: add the client's, as the last property.
            var empty = upstreamBody[..objectEnd].TrimEnd(" \t\r\n"u8)[^1] == (byte)'{';
            var property = empty ? "\"model\":\""u8 : ",\"model\":\""u8;
            body = new byte[objectEnd + property.Length + model.Length + 1 + upstreamBody.Length - objectEnd];
            var rest = body.AsSpan();
            Append(ref rest, upstreamBody[..objectEnd]);
            Append(ref rest, property);
            Append(ref rest, model);
            Append(ref rest, "\""u8);
            Append(ref rest, upstreamBody[objectEnd..]);
        }
        return new TranslatedResponse(body, usage);
    }

    private static void Append(ref Span<byte> destination, ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(destination);
        destination = destination[bytes.Length..];
    }

    public UpstreamFailure TranslateError(HttpResponseMessage response, ReadOnlySpan<byte> upstreamBody) =>
        UpstreamFailure.FromStatus((int)response.StatusCode, deployment.Id, TryReadError(upstreamBody),
            UpstreamFailure.ParseRetryAfter(response.Headers)) with
        {
            UpstreamRequestId = response.Headers.TryGetValues("x-request-id", out var ids) ? ids.FirstOrDefault() : null,
        };

    internal static OpenAiError? TryReadError(ReadOnlySpan<byte> body)
    {
        try
        {
            if (JsonNode.Parse(body) is JsonObject root && root["error"] is JsonObject error
                && error["message"] is JsonValue message && message.GetValueKind() == JsonValueKind.String)
            {
                return new OpenAiError(message.GetValue<string>(),
                    error["type"] is JsonValue type && type.GetValueKind() == JsonValueKind.String ? type.GetValue<string>() : GatewayErrors.InvalidRequest,
                    error["param"] is JsonValue param && param.GetValueKind() == JsonValueKind.String ? param.GetValue<string>() : null,
                    error["code"] is JsonValue code && code.GetValueKind() == JsonValueKind.String ? code.GetValue<string>() : null);
            }
        }
        catch (JsonException)
        {
        }
        return null;
    }

    public IChatStreamTranslator CreateStreamTranslator() => new StreamTranslator(request, deployment);

    private sealed class StreamTranslator(ChatRequest request, Deployment deployment) : IChatStreamTranslator
    {
        private readonly ServerSentEventReader _reader = new();
        private readonly ArrayBufferWriter<byte> _output = new(1024);
        private readonly byte[] _model = JsonEncodedText.Encode(request.Model).EncodedUtf8Bytes.ToArray();
        private bool _done;
        private bool _failed;

        public void Process(ReadOnlySpan<byte> upstreamBytes, IChatStreamSink sink)
        {
            if (_done || _failed)
            {
                return;
            }
            _reader.Feed(upstreamBytes, sink, OnEvent);
        }

        private void OnEvent(IChatStreamSink sink, ReadOnlySpan<byte> data)
        {
            if (_done || _failed)
            {
                return;
            }
            if (data.SequenceEqual("[DONE]"u8))
            {
                _done = true;
                return;
            }

            _output.ResetWrittenCount();
            switch (OpenAiChunkRewriter.Rewrite(data, _model, request.IncludeUsage, _output, out var usage))
            {
                case ChunkRewrite.Malformed:
                    Fail(sink, new OpenAiError($"Deployment '{deployment.Id}' sent a malformed stream event.", "upstream_error", null, "upstream_protocol_error"));
                    return;
                case ChunkRewrite.Error:
                    var error = TryReadError(data);
                    Fail(sink, new OpenAiError(
                        $"Deployment '{deployment.Id}' failed mid-stream" + (error is null ? "." : $": {error.Message}"),
                        error?.Type ?? "upstream_error", null, error?.Code ?? "upstream_error"));
                    return;
            }
            if (usage is not null)
            {
                sink.Usage(usage);
            }
            if (_output.WrittenCount > 0)
            {
                // A usage-only chunk for a client that did not ask for usage was skipped: the gateway asked on its behalf.
                sink.Chunk(_output.WrittenSpan);
            }
        }

        private void Fail(IChatStreamSink sink, OpenAiError error)
        {
            _failed = true;
            sink.Error(error);
        }

        public void Complete(IChatStreamSink sink)
        {
            if (!_done && !_failed)
            {
                Fail(sink, new OpenAiError($"Deployment '{deployment.Id}' ended the stream before it was complete.",
                    "upstream_error", null, "upstream_stream_truncated"));
            }
        }
    }
}
