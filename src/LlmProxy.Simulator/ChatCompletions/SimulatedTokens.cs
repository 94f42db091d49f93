using System.Text.RegularExpressions;

namespace LlmProxy.Simulator.ChatCompletions;

/// <summary>
/// The simulator's tokenizer: one token per whitespace-separated word. It is not a real BPE tokenizer on
/// purpose: tests must be able to predict usage by counting words, and the rule is documented in README.md.
/// </summary>
internal static partial class SimulatedTokens
{
    /// <summary>Tokens the prompt costs per message on top of its words, as OpenAI charges a few per message for the role markup.</summary>
    public const int PerMessageOverhead = 3;

    /// <summary>The number of whitespace-separated words in <paramref name="text"/>.</summary>
    public static int Count(string text) => WordPattern().Count(text);

    /// <summary>
    /// Splits <paramref name="text"/> into tokens that keep their leading whitespace, so that concatenating
    /// any prefix of them gives the text as written (this is what a stream sends as content deltas).
    /// Trailing whitespace belongs to no token and is dropped.
    /// </summary>
    public static IReadOnlyList<string> Split(string text) =>
        TokenPattern().Matches(text).Select(m => m.Value).ToArray();

    /// <summary><c>prompt_tokens</c>: the words of every message's text, plus <see cref="PerMessageOverhead"/> per message.</summary>
    public static int CountPrompt(IReadOnlyList<ChatMessage> messages) =>
        messages.Sum(m => Count(m.Text) + PerMessageOverhead);

    [GeneratedRegex(@"\S+")]
    private static partial Regex WordPattern();

    [GeneratedRegex(@"\s*\S+")]
    private static partial Regex TokenPattern();
}
