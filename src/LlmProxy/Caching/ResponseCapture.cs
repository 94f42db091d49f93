using System.Runtime.InteropServices;
using System.Text.Json;
using LlmProxy.Pipeline;

namespace LlmProxy.Caching;

/// <summary>
/// Watches a missed request's response as the client receives it and, when it turns out to be a successful and
/// complete answer, yields it as the <c>chat.completion</c> to store. Adds no latency: non-streamed bodies are
/// copied once, streamed chunks are folded into a <see cref="StreamAssembler"/> as they pass.
/// </summary>
internal sealed class ResponseCapture(long maxBytes) : IChatResponseObserver
{
    private ReadOnlyMemory<byte>? _body;
    private bool _bodyTooLarge;
    private StreamAssembler? _stream;
    private bool _streamEnded;
    private bool _streamCompleted;

    public void OnResponse(ReadOnlyMemory<byte> body)
    {
        // Kept, not copied: the body handed to observers never changes afterwards.
        _bodyTooLarge = body.Length > maxBytes;
        _body = _bodyTooLarge ? null : body;
    }

    public void OnChunk(ReadOnlySpan<byte> chunkJson)
    {
        if (_streamEnded)
        {
            // A new attempt after one that ended (failover before anything reached the client): start over.
            _stream = null;
            _streamEnded = false;
            _streamCompleted = false;
        }
        (_stream ??= new StreamAssembler(maxBytes)).Add(chunkJson);
    }

    public void OnStreamEnd(bool completed)
    {
        _streamEnded = true;
        _streamCompleted = completed;
    }

    /// <summary>Why the response cannot be stored, or null when <see cref="TryGetCompletion"/> has one.</summary>
    public string? RejectionReason { get; private set; }

    /// <summary>The response as a storable <c>chat.completion</c> JSON, or null (see <see cref="RejectionReason"/>).</summary>
    public byte[]? TryGetCompletion(bool streamed, TokenUsage? meteredUsage)
    {
        if (streamed)
        {
            if (_stream is null || !_streamEnded || !_streamCompleted)
            {
                RejectionReason = "stream_incomplete";
                return null;
            }
            if (_stream.TooLarge)
            {
                RejectionReason = "too_large";
                return null;
            }
            var assembled = _stream.Build(meteredUsage);
            RejectionReason = assembled is null ? "incomplete_choices" : null;
            return assembled;
        }

        if (_bodyTooLarge)
        {
            RejectionReason = "too_large";
            return null;
        }
        if (_body is not { } body)
        {
            RejectionReason = "no_response";
            return null;
        }
        if (!IsCompleteCompletion(body.Span))
        {
            RejectionReason = "incomplete_choices";
            return null;
        }
        RejectionReason = null;
        return MemoryMarshal.TryGetArray(body, out var segment) && segment.Offset == 0 && segment.Count == segment.Array!.Length
            ? segment.Array
            : body.ToArray();
    }

    /// <summary>
    /// A chat.completion with at least one choice, every choice ended with a finish_reason, and no error. Read forward-only
    /// (the body was parsed once already, by the translator); invalid JSON is not complete.
    /// </summary>
    internal static bool IsCompleteCompletion(ReadOnlySpan<byte> body)
    {
        try
        {
            var reader = new Utf8JsonReader(body);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }
            var choices = 0;
            var complete = true;
            var sawChoices = false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("error"u8))
                {
                    return false;
                }
                var isChoices = reader.ValueTextEquals("choices"u8);
                reader.Read();
                if (!isChoices)
                {
                    reader.Skip();
                    continue;
                }
                if (reader.TokenType != JsonTokenType.StartArray)
                {
                    return false;
                }
                // A repeated "choices" counts as the last one, as a JSON tree keeps it.
                sawChoices = true;
                choices = 0;
                complete = true;
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    choices++;
                    complete &= reader.TokenType == JsonTokenType.StartObject && HasFinishReason(ref reader);
                    reader.Skip();
                }
            }
            return sawChoices && choices > 0 && complete;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>Whether the choice object the reader is on has a non-empty string finish_reason; leaves the reader on the object's end.</summary>
    private static bool HasFinishReason(ref Utf8JsonReader reader)
    {
        var found = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isFinishReason = reader.ValueTextEquals("finish_reason"u8);
            reader.Read();
            if (isFinishReason)
            {
                found = reader.TokenType == JsonTokenType.String && reader.ValueSpan.Length > 0;
            }
            reader.Skip();
        }
        return found;
    }
}
