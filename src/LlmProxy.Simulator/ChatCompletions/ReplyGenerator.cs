using System.Text.RegularExpressions;
using LlmProxy.Simulator.OpenAi;

namespace LlmProxy.Simulator.ChatCompletions;

/// <summary>
/// The simulated model. It is deterministic: the same request always gives the same content, tool names,
/// arguments, finish reasons and token counts (only ids and timestamps differ), so tests and caches can
/// compare answers. The rules are documented in README.md.
/// </summary>
internal static partial class ReplyGenerator
{
    internal const string ReplyPrefix = "Simulated reply to:";
    internal const string ToolResultsPrefix = "Simulated reply using tool results:";
    internal const string EmptyPromptReply = "Simulated reply.";

    public static SimulatedReply Generate(ChatCompletionRequest request)
    {
        var choices = new List<SimulatedChoice>(request.ChoiceCount);
        for (var index = 0; index < request.ChoiceCount; index++)
        {
            choices.Add(ShouldCallTools(request) ? ToolCallChoice(request, index) : TextChoice(request, index));
        }

        return new SimulatedReply(request.Model, choices, SimulatedTokens.CountPrompt(request.Messages));
    }

    /// <summary>The text the model would write before <c>stop</c> and <c>max_tokens</c> cut it.</summary>
    internal static string FullText(ChatCompletionRequest request, int choiceIndex)
    {
        var toolResults = TrailingToolResults(request.Messages);
        string text;
        if (toolResults.Count > 0)
        {
            text = $"{ToolResultsPrefix} {string.Join("; ", toolResults)}";
        }
        else if (LastUserText(request.Messages) is { Length: > 0 } prompt)
        {
            text = $"{ReplyPrefix} {prompt}";
        }
        else
        {
            text = EmptyPromptReply;
        }

        // Choices beyond the first differ, as sampled choices would, but still deterministically.
        return choiceIndex == 0 ? text : $"{text} (choice {choiceIndex + 1})";
    }

    private static SimulatedChoice TextChoice(ChatCompletionRequest request, int index)
    {
        var text = FullText(request, index);
        var finishReason = "stop";

        var stopAt = request.StopSequences
            .Select(stop => text.IndexOf(stop, StringComparison.Ordinal))
            .Where(position => position >= 0)
            .DefaultIfEmpty(-1)
            .Min();
        if (stopAt >= 0)
        {
            text = text[..stopAt];
        }

        var tokens = SimulatedTokens.Split(text);
        if (request.MaxTokens is { } max && tokens.Count > max)
        {
            tokens = tokens.Take(max).ToArray();
            finishReason = "length";
        }

        return new SimulatedChoice(index, tokens, [], finishReason, tokens.Count);
    }

    private static SimulatedChoice ToolCallChoice(ChatCompletionRequest request, int index)
    {
        var calls = ToolsToCall(request)
            .Select(tool => new SimulatedToolCall("call_" + OpenAiHeaders.RandomHex(12), tool.Name, ToolArguments.FromSchema(tool.Parameters)))
            .ToArray();
        var tokens = calls.Sum(call => SimulatedTokens.Count(call.Name) + SimulatedTokens.Count(call.Arguments));
        return new SimulatedChoice(index, null, calls, "tool_calls", tokens);
    }

    /// <summary>Tools are called when offered and allowed, unless the conversation ends with tool results to answer.</summary>
    private static bool ShouldCallTools(ChatCompletionRequest request) =>
        request.Tools.Count > 0
        && request.ToolChoice != ToolChoiceMode.None
        && request.Messages[^1].Role != "tool";

    /// <summary>
    /// The named tool when <c>tool_choice</c> names one; every tool when the last user message says
    /// "parallel" (so tests can get parallel tool calls) and <c>parallel_tool_calls</c> allows it; else the first tool.
    /// </summary>
    private static IEnumerable<ToolDefinition> ToolsToCall(ChatCompletionRequest request)
    {
        if (request.ToolChoice == ToolChoiceMode.Named)
        {
            return request.Tools.Where(t => t.Name == request.NamedTool).Take(1);
        }

        if (request.ParallelToolCalls && ParallelWord().IsMatch(LastUserText(request.Messages) ?? string.Empty))
        {
            return request.Tools;
        }

        return request.Tools.Take(1);
    }

    private static string? LastUserText(IReadOnlyList<ChatMessage> messages) =>
        messages.LastOrDefault(m => m.Role == "user")?.Text.Trim();

    private static List<string> TrailingToolResults(IReadOnlyList<ChatMessage> messages)
    {
        var results = new List<string>();
        for (var i = messages.Count - 1; i >= 0 && messages[i].Role == "tool"; i--)
        {
            results.Insert(0, messages[i].Text.Trim());
        }

        return results;
    }

    [GeneratedRegex(@"\bparallel\b", RegexOptions.IgnoreCase)]
    private static partial Regex ParallelWord();
}
