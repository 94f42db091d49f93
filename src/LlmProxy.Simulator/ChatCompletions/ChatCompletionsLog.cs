using Microsoft.Extensions.Logging;

namespace LlmProxy.Simulator.ChatCompletions;

internal static partial class ChatCompletionsLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Debug, Message = "Rejected chat completion: {StatusCode} {Param} {ErrorMessage}")]
    public static partial void Rejected(ILogger logger, int statusCode, string? param, string errorMessage);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Injecting fault {Fault} into a {Mode} chat completion for model {Model}")]
    public static partial void FaultInjected(ILogger logger, SimulatorFault fault, string mode, string model);

    [LoggerMessage(EventId = 3, Level = LogLevel.Debug, Message = "Answered chat completion {CompletionId} for model {Model} ({Mode}, {Choices} choices, {PromptTokens}+{CompletionTokens} tokens)")]
    public static partial void Answered(ILogger logger, string completionId, string model, string mode, int choices, int promptTokens, int completionTokens);

    [LoggerMessage(EventId = 4, Level = LogLevel.Debug, Message = "Chat completion {CompletionId} ended early: the client went away or the server is stopping")]
    public static partial void Abandoned(ILogger logger, string completionId);
}
