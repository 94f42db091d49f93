using System.Security.Cryptography;
using LlmProxy.Simulator.ChatCompletions;

namespace LlmProxy.Simulator.Bedrock;

/// <summary>One content block of the assistant's message.</summary>
internal abstract record ConverseBlock;

/// <summary>A text block, as the tokens a stream sends one delta each; concatenated they are the text.</summary>
internal sealed record ConverseTextBlock(IReadOnlyList<string> Tokens) : ConverseBlock
{
    public string Text => string.Concat(Tokens);
}

/// <summary>A <c>toolUse</c> block; <paramref name="Input"/> is the tool input as compact JSON text.</summary>
internal sealed record ConverseToolUseBlock(string ToolUseId, string Name, string Input) : ConverseBlock;

/// <summary>Everything a Converse answer carries besides its request id and latency.</summary>
internal sealed record ConverseReply(IReadOnlyList<ConverseBlock> Content, string StopReason, int InputTokens, int OutputTokens)
{
    public int TotalTokens => InputTokens + OutputTokens;
}

/// <summary>
/// The simulated model behind the Bedrock endpoints: the OpenAI mode's <see cref="ReplyGenerator"/> and token rule,
/// so a prompt answers the same through either API, with Bedrock's stop reasons (<c>end_turn</c>, <c>tool_use</c>,
/// <c>max_tokens</c>, <c>stop_sequence</c>) and two markers for the reasons a prompt cannot otherwise produce:
/// <c>[[guardrail]]</c> and <c>[[content_filtered]]</c> in the last user message. The rules are documented in README.md.
/// </summary>
internal static class ConverseReplies
{
    internal const string GuardrailMarker = "[[guardrail]]";
    internal const string ContentFilteredMarker = "[[content_filtered]]";

    /// <summary>What a guardrail that blocks the answer sends in its place (Bedrock's default blocked-output message).</summary>
    internal const string GuardrailText = "Sorry, the model cannot answer this question.";

    private const string ToolUseIdPrefix = "tooluse_";
    private const string ToolUseIdAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    public static ConverseReply Generate(ConverseRequest request)
    {
        var chat = request.ToChatCompletionRequest();
        var lastUserText = request.LastUserText;

        if (lastUserText.Contains(GuardrailMarker, StringComparison.OrdinalIgnoreCase))
        {
            var tokens = SimulatedTokens.Split(GuardrailText);
            return new ConverseReply([new ConverseTextBlock(tokens)], "guardrail_intervened", SimulatedTokens.CountPrompt(chat.Messages), tokens.Count);
        }

        var filtered = lastUserText.Contains(ContentFilteredMarker, StringComparison.OrdinalIgnoreCase);
        if (filtered)
        {
            // A filtered answer is text, whatever tools were offered.
            chat = chat with { Tools = [] };
        }

        var reply = ReplyGenerator.Generate(chat);
        var choice = reply.Choices[0];
        if (choice.ToolCalls.Count > 0)
        {
            var uses = choice.ToolCalls.Select(call => new ConverseToolUseBlock(NewToolUseId(), call.Name, call.Arguments)).ToArray();
            return new ConverseReply(uses, "tool_use", reply.PromptTokens, choice.CompletionTokens);
        }

        var stopReason = choice.FinishReason switch
        {
            _ when filtered => "content_filtered",
            "length" => "max_tokens",
            _ when StoppedBySequence(chat) => "stop_sequence",
            _ => "end_turn",
        };
        var content = choice.ContentTokens is { Count: > 0 } words ? new ConverseBlock[] { new ConverseTextBlock(words) } : [];
        return new ConverseReply(content, stopReason, reply.PromptTokens, choice.CompletionTokens);
    }

    /// <summary>Whether one of the stop sequences occurs in the text the model would have written, so the text was cut there.</summary>
    private static bool StoppedBySequence(ChatCompletionRequest chat)
    {
        var fullText = ReplyGenerator.FullText(chat, choiceIndex: 0);
        return chat.StopSequences.Any(stop => fullText.Contains(stop, StringComparison.Ordinal));
    }

    /// <summary><c>tooluse_</c> and 22 letters or digits, the form of Bedrock's ids; unique, like the ids of the OpenAI mode.</summary>
    private static string NewToolUseId() => ToolUseIdPrefix + RandomNumberGenerator.GetString(ToolUseIdAlphabet, 22);
}
