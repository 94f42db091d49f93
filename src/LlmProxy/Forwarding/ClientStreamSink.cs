using System.Buffers;
using System.Text.Json;
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
    private readonly ChatContext _chat;
    private readonly IUpstreamAuthenticator _authenticator;
    private readonly ArrayBufferWriter<byte> _output = new(4096);

    /// <param name="authenticator">The deployment's: an error event can carry upstream text, which must not repeat its secret.</param>
    public ClientStreamSink(ChatContext chat, IUpstreamAuthenticator authenticator)
    {
        _chat = chat;
        _authenticator = authenticator;
    }

    /// <summary>Bytes produced and not yet handed to the client.</summary>
    public ArrayBufferWriter<byte> Output => _output;

    public int ChunksWritten { get; private set; }
    public bool Errored { get; private set; }
    public OpenAiError? ErrorSent { get; private set; }

    public void Chunk(ReadOnlySpan<byte> chunkJson)
    {
        if (Errored)
        {
            return;
        }
        if (_chat.TimeToFirstToken is null && CarriesOutput(chunkJson))
        {
            _chat.TimeToFirstToken = _chat.Elapsed;
        }
        foreach (var observer in _chat.ResponseObservers)
        {
            observer.OnChunk(chunkJson);
        }
        var span = _output.GetSpan(chunkJson.Length + 8);
        "data: "u8.CopyTo(span);
        chunkJson.CopyTo(span[6..]);
        "\n\n"u8.CopyTo(span[(6 + chunkJson.Length)..]);
        _output.Advance(chunkJson.Length + 8);
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

    /// <summary>
    /// Whether the chunk's first choice carries output (non-empty content, or tool calls), read forward-only: this runs
    /// for every chunk until the first one that does.
    /// </summary>
    internal static bool CarriesOutput(ReadOnlySpan<byte> chunkJson)
    {
        try
        {
            var reader = new Utf8JsonReader(chunkJson);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject || !FindProperty(ref reader, "choices"u8)
                || reader.TokenType != JsonTokenType.StartArray || !reader.Read() || reader.TokenType != JsonTokenType.StartObject
                || !FindProperty(ref reader, "delta"u8) || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }
            var content = false;
            var toolCalls = false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("content"u8))
                {
                    reader.Read();
                    content |= reader.TokenType == JsonTokenType.String && reader.ValueSpan.Length > 0;
                }
                else if (reader.ValueTextEquals("tool_calls"u8))
                {
                    reader.Read();
                    toolCalls |= reader.TokenType == JsonTokenType.StartArray;
                }
                else
                {
                    reader.Read();
                }
                reader.Skip();
            }
            return content || toolCalls;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>Moves a reader that is on an object's start to the value of its property <paramref name="name"/>; false when there is none.</summary>
    private static bool FindProperty(ref Utf8JsonReader reader, ReadOnlySpan<byte> name)
    {
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var found = reader.ValueTextEquals(name);
            reader.Read();
            if (found)
            {
                return true;
            }
            reader.Skip();
        }
        return false;
    }
}
