using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

// Wire shapes of the Bedrock Runtime Converse and ConverseStream APIs (Smithy model
// com.amazonaws.bedrockruntime, version 2023-09-30), limited to the members the gateway reads or writes.
// Members are optional here even where the model requires them: the translator decides what a missing
// member means, and unknown members (new block types) are skipped instead of failing the response.
namespace LlmProxy.Providers.Bedrock.Wire;

internal sealed class ConverseRequest
{
    [JsonPropertyName("messages")] public List<BedrockMessage> Messages { get; set; } = [];
    [JsonPropertyName("system")] public List<SystemContentBlock>? System { get; set; }
    [JsonPropertyName("inferenceConfig")] public InferenceConfiguration? InferenceConfig { get; set; }
    [JsonPropertyName("toolConfig")] public ToolConfiguration? ToolConfig { get; set; }
}

internal sealed class BedrockMessage
{
    public const string User = "user";
    public const string Assistant = "assistant";

    [JsonPropertyName("role")] public string? Role { get; set; }
    [JsonPropertyName("content")] public List<ContentBlock>? Content { get; set; }
}

/// <summary>A union: exactly one member is set.</summary>
internal sealed class ContentBlock
{
    [JsonPropertyName("text")] public string? Text { get; set; }
    [JsonPropertyName("image")] public ImageBlock? Image { get; set; }
    [JsonPropertyName("toolUse")] public ToolUseBlock? ToolUse { get; set; }
    [JsonPropertyName("toolResult")] public ToolResultBlock? ToolResult { get; set; }
}

internal sealed class SystemContentBlock
{
    [JsonPropertyName("text")] public string? Text { get; set; }
}

internal sealed class ImageBlock
{
    /// <summary><c>png</c>, <c>jpeg</c>, <c>gif</c> or <c>webp</c>.</summary>
    [JsonPropertyName("format")] public string? Format { get; set; }
    [JsonPropertyName("source")] public ImageSource? Source { get; set; }
}

internal sealed class ImageSource
{
    /// <summary>The image, base64-encoded (a Smithy blob in JSON).</summary>
    [JsonPropertyName("bytes")] public string? Bytes { get; set; }
}

internal sealed class ToolUseBlock
{
    [JsonPropertyName("toolUseId")] public string? ToolUseId { get; set; }
    [JsonPropertyName("name")] public string? Name { get; set; }
    [JsonPropertyName("input")] public JsonNode? Input { get; set; }
}

internal sealed class ToolResultBlock
{
    [JsonPropertyName("toolUseId")] public string? ToolUseId { get; set; }
    [JsonPropertyName("content")] public List<ToolResultContentBlock> Content { get; set; } = [];
    [JsonPropertyName("status")] public string? Status { get; set; }
}

internal sealed class ToolResultContentBlock
{
    [JsonPropertyName("text")] public string? Text { get; set; }
}

internal sealed class InferenceConfiguration
{
    [JsonPropertyName("maxTokens")] public int? MaxTokens { get; set; }
    [JsonPropertyName("temperature")] public double? Temperature { get; set; }
    [JsonPropertyName("topP")] public double? TopP { get; set; }
    [JsonPropertyName("stopSequences")] public List<string>? StopSequences { get; set; }
}

internal sealed class ToolConfiguration
{
    [JsonPropertyName("tools")] public List<Tool> Tools { get; set; } = [];
    [JsonPropertyName("toolChoice")] public ToolChoice? ToolChoice { get; set; }
}

internal sealed class Tool
{
    [JsonPropertyName("toolSpec")] public ToolSpecification? ToolSpec { get; set; }
}

internal sealed class ToolSpecification
{
    [JsonPropertyName("name")] public string? Name { get; set; }
    [JsonPropertyName("description")] public string? Description { get; set; }
    [JsonPropertyName("inputSchema")] public ToolInputSchema? InputSchema { get; set; }
}

internal sealed class ToolInputSchema
{
    [JsonPropertyName("json")] public JsonNode? Json { get; set; }
}

/// <summary>A union: <c>{"auto":{}}</c>, <c>{"any":{}}</c> or <c>{"tool":{"name":...}}</c>.</summary>
internal sealed class ToolChoice
{
    [JsonPropertyName("auto")] public EmptyStructure? Auto { get; set; }
    [JsonPropertyName("any")] public EmptyStructure? Any { get; set; }
    [JsonPropertyName("tool")] public SpecificToolChoice? Tool { get; set; }
}

internal sealed class EmptyStructure;

internal sealed class SpecificToolChoice
{
    [JsonPropertyName("name")] public string? Name { get; set; }
}

internal sealed class ConverseResponse
{
    [JsonPropertyName("output")] public ConverseOutput? Output { get; set; }
    [JsonPropertyName("stopReason")] public string? StopReason { get; set; }
    [JsonPropertyName("usage")] public BedrockTokenUsage? Usage { get; set; }
}

internal sealed class ConverseOutput
{
    [JsonPropertyName("message")] public BedrockMessage? Message { get; set; }
}

internal sealed class BedrockTokenUsage
{
    [JsonPropertyName("inputTokens")] public int InputTokens { get; set; }
    [JsonPropertyName("outputTokens")] public int OutputTokens { get; set; }
    [JsonPropertyName("totalTokens")] public int TotalTokens { get; set; }
    [JsonPropertyName("cacheReadInputTokens")] public int? CacheReadInputTokens { get; set; }
    [JsonPropertyName("cacheWriteInputTokens")] public int? CacheWriteInputTokens { get; set; }
}

// ConverseStream events: the payload of an event-stream message whose :event-type names the member.

internal sealed class MessageStartEvent
{
    [JsonPropertyName("role")] public string? Role { get; set; }
}

internal sealed class ContentBlockStartEvent
{
    [JsonPropertyName("start")] public ContentBlockStart? Start { get; set; }
    [JsonPropertyName("contentBlockIndex")] public int ContentBlockIndex { get; set; }
}

internal sealed class ContentBlockStart
{
    [JsonPropertyName("toolUse")] public ToolUseBlockStart? ToolUse { get; set; }
}

internal sealed class ToolUseBlockStart
{
    [JsonPropertyName("toolUseId")] public string? ToolUseId { get; set; }
    [JsonPropertyName("name")] public string? Name { get; set; }
}

internal sealed class ContentBlockDeltaEvent
{
    [JsonPropertyName("delta")] public ContentBlockDelta? Delta { get; set; }
    [JsonPropertyName("contentBlockIndex")] public int ContentBlockIndex { get; set; }
}

internal sealed class ContentBlockDelta
{
    [JsonPropertyName("text")] public string? Text { get; set; }
    [JsonPropertyName("toolUse")] public ToolUseBlockDelta? ToolUse { get; set; }
}

internal sealed class ToolUseBlockDelta
{
    /// <summary>A fragment of the tool input's JSON text.</summary>
    [JsonPropertyName("input")] public string? Input { get; set; }
}

internal sealed class MessageStopEvent
{
    [JsonPropertyName("stopReason")] public string? StopReason { get; set; }
}

internal sealed class ConverseStreamMetadataEvent
{
    [JsonPropertyName("usage")] public BedrockTokenUsage? Usage { get; set; }
}

/// <summary>The body of an error response or exception event. AWS JSON protocols spell the message either way.</summary>
internal sealed class BedrockErrorBody
{
    [JsonPropertyName("message")] public string? Message { get; set; }
    [JsonPropertyName("Message")] public string? MessageCapitalized { get; set; }
    [JsonPropertyName("__type")] public string? Type { get; set; }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ConverseRequest))]
[JsonSerializable(typeof(ConverseResponse))]
[JsonSerializable(typeof(MessageStartEvent))]
[JsonSerializable(typeof(ContentBlockStartEvent))]
[JsonSerializable(typeof(ContentBlockDeltaEvent))]
[JsonSerializable(typeof(MessageStopEvent))]
[JsonSerializable(typeof(ConverseStreamMetadataEvent))]
[JsonSerializable(typeof(BedrockErrorBody))]
internal sealed partial class BedrockJsonContext : JsonSerializerContext;
