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
    private byte[]? _body;
    private bool _bodyTooLarge;
    private StreamAssembler? _stream;
    private bool _streamEnded;
    private bool _streamCompleted;

    public void OnResponse(ReadOnlySpan<byte> body)
    {
        _bodyTooLarge = body.Length > maxBytes;
        _body = _bodyTooLarge ? null : body.ToArray();
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
        if (_body is null)
        {
            RejectionReason = "no_response";
            return null;
        }
        if (!IsCompleteCompletion(_body))
        {
            RejectionReason = "incomplete_choices";
            return null;
        }
        RejectionReason = null;
        return _body;
    }

    /// <summary>A chat.completion with at least one choice, every choice ended with a finish_reason, and no error.</summary>
    internal static bool IsCompleteCompletion(ReadOnlySpan<byte> body)
    {
        try
        {
            var reader = new Utf8JsonReader(body);
            using var document = JsonDocument.ParseValue(ref reader);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || root.TryGetProperty("error", out _)
                || !root.TryGetProperty("choices", out var choices) || choices.ValueKind != JsonValueKind.Array || choices.GetArrayLength() == 0)
            {
                return false;
            }
            foreach (var choice in choices.EnumerateArray())
            {
                if (choice.ValueKind != JsonValueKind.Object
                    || !choice.TryGetProperty("finish_reason", out var finishReason) || finishReason.ValueKind != JsonValueKind.String
                    || finishReason.GetString() is not { Length: > 0 })
                {
                    return false;
                }
            }
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
