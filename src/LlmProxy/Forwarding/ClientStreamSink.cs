using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;
using LlmProxy.OpenAi;
using LlmProxy.Pipeline;
using LlmProxy.Providers;

namespace LlmProxy.Forwarding;

/// <summary>
/// Serializes what a stream translator emits as OpenAI server-sent events (<c>data: {json}\n\n</c>,
/// then <c>data: [DONE]</c>), and lets the request's observers see each chunk as it goes out.
/// </summary>
internal sealed class ClientStreamSink : IChatStreamSink
{
    private static readonly JsonWriterOptions WriterOptions = new() { SkipValidation = true };
    private readonly ChatContext _chat;
    private readonly IUpstreamAuthenticator _authenticator;
    private readonly ArrayBufferWriter<byte> _output = new(4096);
    private readonly Utf8JsonWriter _json;

    /// <param name="authenticator">The deployment's: an error event can carry upstream text, which must not repeat its secret.</param>
    public ClientStreamSink(ChatContext chat, IUpstreamAuthenticator authenticator)
    {
        _chat = chat;
        _authenticator = authenticator;
        _json = new Utf8JsonWriter(_output, WriterOptions);
    }

    /// <summary>Bytes produced and not yet handed to the client.</summary>
    public ArrayBufferWriter<byte> Output => _output;

    public int ChunksWritten { get; private set; }
    public bool Errored { get; private set; }
    public OpenAiError? ErrorSent { get; private set; }

    public void Chunk(JsonObject chunk)
    {
        if (Errored)
        {
            return;
        }
        if (_chat.TimeToFirstToken is null && CarriesOutput(chunk))
        {
            _chat.TimeToFirstToken = _chat.Elapsed;
        }
        foreach (var observer in _chat.ResponseObservers)
        {
            observer.OnChunk(chunk);
        }
        _output.Write("data: "u8);
        _json.Reset(_output);
        chunk.WriteTo(_json);
        _json.Flush();
        _output.Write("\n\n"u8);
        ChunksWritten++;
    }

    public void Error(OpenAiError error)
    {
        if (Errored)
        {
            return;
        }
        Errored = true;
        error = AttemptTransformer.RedactError(_authenticator, error);
        ErrorSent = error;
        _chat.ErrorCode = error.Code ?? error.Type;
        _output.Write("data: "u8);
        _output.Write(ErrorResponseWriter.Serialize(error));
        _output.Write("\n\n"u8);
    }

    public void Usage(TokenUsage usage) => _chat.Usage = usage;

    /// <summary>Ends a stream that completed normally.</summary>
    public void Done()
    {
        if (!Errored)
        {
            _output.Write("data: [DONE]\n\n"u8);
        }
        foreach (var observer in _chat.ResponseObservers)
        {
            observer.OnStreamEnd(completed: !Errored);
        }
    }

    private static bool CarriesOutput(JsonObject chunk) =>
        chunk["choices"] is JsonArray { Count: > 0 } choices
        && choices[0]?["delta"] is JsonObject delta
        && ((delta["content"] is JsonValue content && content.GetValueKind() == JsonValueKind.String && content.GetValue<string>().Length > 0)
            || delta["tool_calls"] is JsonArray);
}
