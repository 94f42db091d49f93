namespace LlmProxy.Simulator.ChatCompletions;

/// <summary>One tool call of a simulated reply.</summary>
internal sealed record SimulatedToolCall(string Id, string Name, string Arguments);

/// <summary>One choice of a simulated reply: either text content or tool calls, and why it ended.</summary>
/// <param name="Index">The choice index.</param>
/// <param name="ContentTokens">The content as streamed tokens (words with their leading whitespace); null for a tool-call reply.</param>
/// <param name="ToolCalls">The tool calls; empty for a text reply.</param>
/// <param name="FinishReason">stop, length or tool_calls.</param>
/// <param name="CompletionTokens">What this choice adds to <c>completion_tokens</c>.</param>
internal sealed record SimulatedChoice(
    int Index,
    IReadOnlyList<string>? ContentTokens,
    IReadOnlyList<SimulatedToolCall> ToolCalls,
    string FinishReason,
    int CompletionTokens)
{
    public string? Content => ContentTokens is null ? null : string.Concat(ContentTokens);
}

/// <summary>Everything a chat completion answer carries besides its ids and timestamps.</summary>
internal sealed record SimulatedReply(string Model, IReadOnlyList<SimulatedChoice> Choices, int PromptTokens)
{
    public int CompletionTokens => Choices.Sum(c => c.CompletionTokens);

    public int TotalTokens => PromptTokens + CompletionTokens;
}
