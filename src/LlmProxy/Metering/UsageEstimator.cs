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
    /// Adds the model output carried by one <c>chat.completion.chunk</c> to <paramref name="output"/>: content, refusal,
    /// reasoning and tool call names and arguments of every choice.
    /// </summary>
    public static void AddChunkOutput(JsonObject chunk, OutputText output)
    {
        ArgumentNullException.ThrowIfNull(chunk);
        ArgumentNullException.ThrowIfNull(output);
        AddOutput(chunk, "delta", output);
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

    public void Add(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return;
        }
        Characters += text.Length;
        var room = KeptCharacters - _kept.Length;
        if (room > 0)
        {
            _kept.Append(text, 0, Math.Min(room, text.Length));
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
