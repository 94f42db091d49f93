using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LlmProxy.OpenAi;
using Microsoft.ML.Tokenizers;

namespace LlmProxy.Metering;

/// <summary>
/// Token counts for a response the upstream reported no usage for (a stream cut short, an upstream that omits usage).
/// For OpenAI models (<see cref="OpenAiTokenizers"/>) the prompt and the output the client was sent are counted with the
/// model's own tokenizer; for other models the prompt is estimated by the gateway's cheap prompt estimator
/// (<see cref="RateLimiting.TokenEstimator"/>, which rate limiting reserves capacity with) and the output at four
/// characters a token (expect ±25% on prose, more on code or non-Latin scripts). Records carrying estimates say so.
/// </summary>
internal static class UsageEstimator
{
    /// <summary>Tokens of <paramref name="characters"/> characters of text: ⌈characters / 4⌉.</summary>
    public static int FromCharacters(long characters) =>
        characters <= 0 ? 0 : (int)Math.Min(int.MaxValue, (characters + RateLimiting.TokenEstimator.CharactersPerToken - 1) / RateLimiting.TokenEstimator.CharactersPerToken);

    /// <summary>Tokens of a piece of text at four characters a token.</summary>
    public static int EstimateText(string? text) => FromCharacters(text?.Length ?? 0);

    /// <summary>Prompt tokens of a chat completion request at four characters a token: messages with their framing, and tool definitions.</summary>
    public static int EstimatePrompt(ChatRequest request) => EstimatePrompt(request, tokenizer: null);

    /// <summary>Prompt tokens of a chat completion request, its text counted by <paramref name="tokenizer"/> when there is one.</summary>
    public static int EstimatePrompt(ChatRequest request, Tokenizer? tokenizer)
    {
        ArgumentNullException.ThrowIfNull(request);
        return RateLimiting.TokenEstimator.EstimatePrompt(request.Body, tokenizer is null ? null : text => tokenizer.CountTokens(text));
    }

    /// <summary>
    /// Adds the model output carried by one <c>chat.completion.chunk</c>, given as its JSON text, to <paramref name="output"/>:
    /// content, refusal, reasoning and tool call names and arguments of every choice. Read forward-only, without a JSON tree;
    /// a chunk that is not valid JSON adds what was read before the fault.
    /// </summary>
    public static void AddChunkOutput(ReadOnlySpan<byte> chunkJson, OutputText output)
    {
        ArgumentNullException.ThrowIfNull(output);
        try
        {
            var reader = new Utf8JsonReader(chunkJson);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return;
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isChoices = reader.ValueTextEquals("choices"u8);
                reader.Read();
                if (!isChoices || reader.TokenType != JsonTokenType.StartArray)
                {
                    reader.Skip();
                    continue;
                }
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType != JsonTokenType.StartObject)
                    {
                        reader.Skip();
                        continue;
                    }
                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        var isDelta = reader.ValueTextEquals("delta"u8);
                        reader.Read();
                        if (isDelta && reader.TokenType == JsonTokenType.StartObject)
                        {
                            AddDelta(ref reader, output);
                        }
                        else
                        {
                            reader.Skip();
                        }
                    }
                }
            }
        }
        catch (JsonException)
        {
        }
    }

    /// <summary>Reads a delta object (the reader on its start, left on its end) into <paramref name="output"/>.</summary>
    private static void AddDelta(ref Utf8JsonReader reader, OutputText output)
    {
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isText = reader.ValueTextEquals("content"u8) || reader.ValueTextEquals("refusal"u8) || reader.ValueTextEquals("reasoning_content"u8);
            var isToolCalls = !isText && reader.ValueTextEquals("tool_calls"u8);
            reader.Read();
            if (isText)
            {
                AddString(ref reader, output);
            }
            else if (isToolCalls && reader.TokenType == JsonTokenType.StartArray)
            {
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType != JsonTokenType.StartObject)
                    {
                        reader.Skip();
                        continue;
                    }
                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        var isFunction = reader.ValueTextEquals("function"u8);
                        reader.Read();
                        if (isFunction && reader.TokenType == JsonTokenType.StartObject)
                        {
                            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                            {
                                var isPart = reader.ValueTextEquals("name"u8) || reader.ValueTextEquals("arguments"u8);
                                reader.Read();
                                if (isPart)
                                {
                                    AddString(ref reader, output);
                                }
                                else
                                {
                                    reader.Skip();
                                }
                            }
                        }
                        else
                        {
                            reader.Skip();
                        }
                    }
                }
            }
            else
            {
                reader.Skip();
            }
        }
    }

    /// <summary>Adds a string value (the reader on it) to <paramref name="output"/> without allocating a string; other values are skipped.</summary>
    private static void AddString(ref Utf8JsonReader reader, OutputText output)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            reader.Skip();
            return;
        }
        var length = reader.HasValueSequence ? checked((int)reader.ValueSequence.Length) : reader.ValueSpan.Length;
        if (length == 0)
        {
            return;
        }
        char[]? rented = null;
        var buffer = length <= 256 ? stackalloc char[256] : (rented = System.Buffers.ArrayPool<char>.Shared.Rent(length));
        var written = reader.CopyString(buffer);
        output.Add(buffer[..written]);
        if (rented is not null)
        {
            System.Buffers.ArrayPool<char>.Shared.Return(rented);
        }
    }

    /// <summary>Adds the messages of every choice of a complete <c>chat.completion</c> object to <paramref name="output"/>.</summary>
    public static void AddCompletionOutput(JsonObject completion, OutputText output)
    {
        ArgumentNullException.ThrowIfNull(completion);
        ArgumentNullException.ThrowIfNull(output);
        AddOutput(completion, "message", output);
    }

    private static void AddOutput(JsonObject response, string messageProperty, OutputText output)
    {
        if (response["choices"] is not JsonArray choices)
        {
            return;
        }
        foreach (var choice in choices)
        {
            if (choice?[messageProperty] is not JsonObject message)
            {
                continue;
            }
            output.Add(StringOf(message["content"]));
            output.Add(StringOf(message["refusal"]));
            output.Add(StringOf(message["reasoning_content"]));
            if (message["tool_calls"] is JsonArray calls)
            {
                foreach (var call in calls)
                {
                    if (call?["function"] is JsonObject function)
                    {
                        output.Add(StringOf(function["name"]));
                        output.Add(StringOf(function["arguments"]));
                    }
                }
            }
        }
    }

    private static string? StringOf(JsonNode? node) =>
        node is JsonValue value && value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : null;
}

/// <summary>
/// The model output a client was sent, kept to count its tokens should the upstream report none. The first
/// <see cref="KeptCharacters"/> characters are kept; a longer output is counted from those and scaled by its length.
/// </summary>
internal sealed class OutputText
{
    /// <summary>Characters kept for counting (64 K; about 16 K tokens of prose).</summary>
    public const int KeptCharacters = 64 * 1024;

    private readonly StringBuilder _kept = new();

    /// <summary>Characters of output seen, kept or not.</summary>
    public long Characters { get; private set; }

    public void Add(string? text) => Add(text.AsSpan());

    public void Add(ReadOnlySpan<char> text)
    {
        if (text.IsEmpty)
        {
            return;
        }
        Characters += text.Length;
        var room = KeptCharacters - _kept.Length;
        if (room > 0)
        {
            _kept.Append(text[..Math.Min(room, text.Length)]);
        }
    }

    /// <summary>Tokens of the output: counted by <paramref name="tokenizer"/> when there is one, else at four characters a token.</summary>
    public int Tokens(Tokenizer? tokenizer)
    {
        if (tokenizer is null || _kept.Length == 0)
        {
            return UsageEstimator.FromCharacters(Characters);
        }
        var counted = tokenizer.CountTokens(_kept.ToString());
        return Characters <= _kept.Length
            ? counted
            : (int)Math.Min(int.MaxValue, Math.Ceiling(counted * (double)Characters / _kept.Length));
    }
}
