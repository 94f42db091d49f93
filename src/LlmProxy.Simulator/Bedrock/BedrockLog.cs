using Microsoft.Extensions.Logging;

namespace LlmProxy.Simulator.Bedrock;

internal static partial class BedrockLog
{
    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "Rejected a Bedrock request's signature: {ErrorType} {ErrorMessage}")]
    public static partial void SignatureRejected(ILogger logger, string errorType, string errorMessage);

    [LoggerMessage(EventId = 102, Level = LogLevel.Debug, Message = "Rejected Bedrock {Operation}: {ErrorType} {ErrorMessage}")]
    public static partial void Rejected(ILogger logger, BedrockOperation operation, string errorType, string errorMessage);

    [LoggerMessage(EventId = 103, Level = LogLevel.Information, Message = "Injecting fault {Fault} into Bedrock {Operation} for model {ModelId}")]
    public static partial void FaultInjected(ILogger logger, SimulatorFault fault, BedrockOperation operation, string modelId);

    [LoggerMessage(EventId = 104, Level = LogLevel.Debug, Message = "Answered Bedrock {Operation} for model {ModelId}: {StopReason}, {InputTokens}+{OutputTokens} tokens")]
    public static partial void Answered(ILogger logger, BedrockOperation operation, string modelId, string stopReason, int inputTokens, int outputTokens);

    [LoggerMessage(EventId = 105, Level = LogLevel.Debug, Message = "Bedrock {Operation} for model {ModelId} ended early: the client went away or the server is stopping")]
    public static partial void Abandoned(ILogger logger, BedrockOperation operation, string modelId);
}
