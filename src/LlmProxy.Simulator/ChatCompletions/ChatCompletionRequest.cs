using System.Text.Json;

namespace LlmProxy.Simulator.ChatCompletions;

/// <summary>One request message, reduced to what the simulated model reads: its role and its text.</summary>
/// <param name="Role">system, developer, user, assistant, tool or function.</param>
/// <param name="Text">The string content, or the text parts of an array content joined by newlines; empty when there is none.</param>
internal sealed record ChatMessage(string Role, string Text);

/// <summary>A function tool the request offers.</summary>
/// <param name="Name">The function name.</param>
/// <param name="Parameters">The JSON schema of its arguments, if the request gave one.</param>
internal sealed record ToolDefinition(string Name, JsonElement? Parameters);

internal enum ToolChoiceMode
{
    /// <summary>The model may call tools: the simulator always does when tools are offered.</summary>
    Auto,

    /// <summary>The model must not call tools.</summary>
    None,

    /// <summary>The model must call at least one tool.</summary>
    Required,

    /// <summary>The model must call the tool named in <see cref="ChatCompletionRequest.NamedTool"/>.</summary>
    Named,
}

/// <summary>The parts of <c>CreateChatCompletionRequest</c> that change the simulated reply, already validated.</summary>
internal sealed record ChatCompletionRequest
{
    public required string Model { get; init; }

    public required IReadOnlyList<ChatMessage> Messages { get; init; }

    public bool Stream { get; init; }

    /// <summary><c>stream_options.include_usage</c>: a final usage chunk, and <c>"usage": null</c> on every other chunk.</summary>
    public bool IncludeUsage { get; init; }

    /// <summary><c>n</c>: how many choices to generate.</summary>
    public int ChoiceCount { get; init; } = 1;

    /// <summary><c>max_completion_tokens</c>, or the deprecated <c>max_tokens</c> when only that is given.</summary>
    public int? MaxTokens { get; init; }

    public IReadOnlyList<string> StopSequences { get; init; } = [];

    public IReadOnlyList<ToolDefinition> Tools { get; init; } = [];

    public ToolChoiceMode ToolChoice { get; init; } = ToolChoiceMode.Auto;

    public string? NamedTool { get; init; }

    /// <summary><c>parallel_tool_calls</c>; defaults to true as in OpenAI.</summary>
    public bool ParallelToolCalls { get; init; } = true;
}
