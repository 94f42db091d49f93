using LlmProxy.Simulator.ChatCompletions;

namespace LlmProxy.Simulator.Bedrock;

/// <summary>
/// The parts of a validated <c>ConverseRequest</c> that change the simulated reply. The conversation is kept as the
/// simulated model reads it (<see cref="ChatMessage"/>: role and text), the same view an OpenAI request gives it, so
/// that one prompt sent through either API gets the same answer and the same token counts.
/// </summary>
internal sealed record ConverseRequest
{
    /// <summary>The model id from the path, decoded (an inference-profile ARN arrives percent-encoded).</summary>
    public required string ModelId { get; init; }

    /// <summary>
    /// Each <c>system</c> text block as a system message; each message's text blocks joined by newlines, in its role;
    /// each <c>toolResult</c> block as a <c>tool</c> message after the text of its user turn. Images, documents and
    /// <c>toolUse</c> blocks carry no text, as image parts and tool calls carry none in an OpenAI request.
    /// </summary>
    public required IReadOnlyList<ChatMessage> Messages { get; init; }

    /// <summary><c>inferenceConfig.maxTokens</c>.</summary>
    public int? MaxTokens { get; init; }

    /// <summary><c>inferenceConfig.stopSequences</c>.</summary>
    public IReadOnlyList<string> StopSequences { get; init; } = [];

    /// <summary>The <c>toolSpec</c> entries of <c>toolConfig.tools</c>.</summary>
    public IReadOnlyList<ToolDefinition> Tools { get; init; } = [];

    /// <summary><c>toolConfig.toolChoice</c>: <c>auto</c> (the default), <c>any</c> (Required) or <c>tool</c> (Named).</summary>
    public ToolChoiceMode ToolChoice { get; init; } = ToolChoiceMode.Auto;

    /// <summary>The tool named by <c>toolChoice.tool.name</c>.</summary>
    public string? NamedTool { get; init; }

    /// <summary>The text of the last user message, where the test markers (<c>[[guardrail]]</c>, ...) are looked for.</summary>
    public string LastUserText => Messages.LastOrDefault(m => m.Role == "user")?.Text ?? string.Empty;

    /// <summary>
    /// The same request in the OpenAI shape the reply generator takes. Bedrock has no <c>n</c> and no switch for parallel
    /// tool use: one choice, and parallel calls whenever the prompt asks for them.
    /// </summary>
    public ChatCompletionRequest ToChatCompletionRequest() => new()
    {
        Model = ModelId,
        Messages = Messages,
        MaxTokens = MaxTokens,
        StopSequences = StopSequences,
        Tools = Tools,
        ToolChoice = ToolChoice,
        NamedTool = NamedTool,
        ParallelToolCalls = true,
    };
}
