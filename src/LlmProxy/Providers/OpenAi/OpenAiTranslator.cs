using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;
using LlmProxy.OpenAi;
using LlmProxy.Routing;

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

    public TranslatedResponse TranslateResponse(ReadOnlySpan<byte> upstreamBody)
    {
        JsonObject completion;
        try
        {
            completion = JsonNode.Parse(upstreamBody) as JsonObject ?? throw new JsonException("not an object");
        }
        catch (JsonException)
        {
            throw new UpstreamProtocolException($"Deployment '{deployment.Id}' returned a response that is not a chat completion.");
        }
        completion["model"] = request.Model;
        var usage = OpenAiUsage.Read(completion["usage"]);
        return new TranslatedResponse(JsonSerializer.SerializeToUtf8Bytes(completion), usage);
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

            JsonObject chunk;
            try
            {
                chunk = JsonNode.Parse(data) as JsonObject ?? throw new JsonException("not an object");
            }
            catch (JsonException)
            {
                Fail(sink, new OpenAiError($"Deployment '{deployment.Id}' sent a malformed stream event.", "upstream_error", null, "upstream_protocol_error"));
                return;
            }

            if (chunk["error"] is JsonObject)
            {
                var error = TryReadError(data);
                Fail(sink, new OpenAiError(
                    $"Deployment '{deployment.Id}' failed mid-stream" + (error is null ? "." : $": {error.Message}"),
                    error?.Type ?? "upstream_error", null, error?.Code ?? "upstream_error"));
                return;
            }

            var usageNode = chunk["usage"];
            if (OpenAiUsage.Read(usageNode) is { } usage)
            {
                sink.Usage(usage);
            }
            if (!request.IncludeUsage)
            {
                // The gateway asked for usage on the client's behalf; the client must not see what it did not ask for.
                if (chunk["choices"] is JsonArray { Count: 0 } && usageNode is JsonObject)
                {
                    return;
                }
                chunk.Remove("usage");
            }
            chunk["model"] = request.Model;
            sink.Chunk(chunk);
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
