using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using LlmProxy.Simulator.ChatCompletions;

namespace LlmProxy.Simulator.Bedrock;

/// <summary>
/// Reads and validates a <c>ConverseRequest</c> / <c>ConverseStreamRequest</c> body the way Bedrock does, in the order it does:
/// <list type="number">
/// <item>the body must be JSON of the request's shape, else 400 <c>SerializationException</c>;</item>
/// <item>the constraints of the API model (ranges, lengths, enums, patterns) are checked together and reported in one
/// <c>ValidationException</c> in AWS's "N validation errors detected: Value '...' at '...' failed to satisfy constraint: ..." form,
/// with AWS's 1-based <c>messages.1.member.role</c> paths;</item>
/// <item>the model must exist: ids starting with <c>unknown</c> get 404 <c>ResourceNotFoundException</c>;</item>
/// <item>the conversation rules get Bedrock's own <c>ValidationException</c> messages (first message from the user,
/// alternating roles, non-empty content, one member per content block, <c>toolConfig</c> present when tools are used,
/// each <c>toolUse</c> answered by a <c>toolResult</c> in the next turn).</item>
/// </list>
/// Fields the simulator has no use for (<c>guardrailConfig</c>, <c>additionalModelRequestFields</c>, ...) are ignored.
/// </summary>
internal static partial class ConverseRequestParser
{
    internal const string UnknownModelPrefix = "unknown";

    private const int MaxStopSequences = 4;
    private const int MaxIdLength = 64;

    private static readonly string[] s_roles = ["user", "assistant"];
    private static readonly string[] s_imageFormats = ["png", "jpeg", "gif", "webp"];

    private static readonly string[] s_contentBlockMembers =
        ["text", "image", "document", "video", "toolUse", "toolResult", "guardContent", "cachePoint", "reasoningContent", "citationsContent"];

    public static bool TryParse(
        string modelId,
        ReadOnlyMemory<byte> body,
        [NotNullWhen(true)] out ConverseRequest? request,
        [NotNullWhen(false)] out BedrockError? error)
    {
        request = null;
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body.IsEmpty ? "{}"u8.ToArray() : body, new JsonDocumentOptions { MaxDepth = 256 });
        }
        catch (JsonException)
        {
            error = BedrockError.Serialization("The request body is not valid JSON.");
            return false;
        }

        using (document)
        {
            try
            {
                error = Validate(modelId, document.RootElement, out request);
                return error is null;
            }
            catch (ShapeException exception)
            {
                error = BedrockError.Serialization(exception.Message);
                request = null;
                return false;
            }
        }
    }

    private static BedrockError? Validate(string modelId, JsonElement root, out ConverseRequest? request)
    {
        request = null;
        Expect(root, JsonValueKind.Object, "the request body");

        // 1. Shape, and 2. the model's constraints, collected into one message as AWS does.
        var violations = new List<string>();
        var inference = ReadInferenceConfig(root, violations);
        var system = ReadSystem(root, violations);
        var messages = ReadMessages(root, violations);
        var tools = ReadToolConfig(root, violations);
        if (violations.Count > 0)
        {
            var count = violations.Count == 1 ? "1 validation error" : $"{violations.Count} validation errors";
            return BedrockError.Validation($"{count} detected: {string.Join("; ", violations)}");
        }

        // 3. The model.
        if (modelId.StartsWith(UnknownModelPrefix, StringComparison.OrdinalIgnoreCase))
        {
            return BedrockError.ResourceNotFound("Could not resolve the foundation model from the provided model identifier.");
        }

        // 4. The conversation.
        if (CheckConversation(messages, tools) is { } conversationError)
        {
            return conversationError;
        }

        request = new ConverseRequest
        {
            ModelId = modelId,
            Messages = ModelView(system, messages),
            MaxTokens = inference.MaxTokens,
            StopSequences = inference.StopSequences,
            Tools = tools?.Tools ?? [],
            ToolChoice = tools?.Choice ?? ToolChoiceMode.Auto,
            NamedTool = tools?.NamedTool,
        };
        return null;
    }

    // ----- what was read -----

    private sealed record Inference(int? MaxTokens, IReadOnlyList<string> StopSequences);

    private sealed record Message(string Role, IReadOnlyList<Block> Content);

    /// <summary>One content block: the union members it sets, and what the simulator needs of them.</summary>
    private sealed record Block(IReadOnlyList<string> Members)
    {
        public string? Text { get; init; }

        public string? ImageBytes { get; init; }

        public string? ToolUseId { get; init; }

        public string? ToolResultText { get; init; }

        public bool ToolResultIsEmptyError { get; init; }

        public string? Kind => Members.Count == 1 ? Members[0] : null;
    }

    private sealed record ToolConfig(IReadOnlyList<ToolDefinition> Tools, ToolChoiceMode Choice, string? NamedTool);

    // ----- reading, with the API model's constraints -----

    private static Inference ReadInferenceConfig(JsonElement root, List<string> violations)
    {
        if (!TryGetMember(root, "inferenceConfig", out var config))
        {
            return new Inference(null, []);
        }

        Expect(config, JsonValueKind.Object, "inferenceConfig");
        int? maxTokens = null;
        if (TryGetMember(config, "maxTokens", out var max))
        {
            if (max.ValueKind != JsonValueKind.Number || !max.TryGetInt32(out var value))
            {
                throw ShapeException.Expected("inferenceConfig.maxTokens", "an integer", max);
            }

            if (value < 1)
            {
                violations.Add(Constraint(max.GetRawText(), "inferenceConfig.maxTokens", "Member must have value greater than or equal to 1"));
            }

            maxTokens = value;
        }

        foreach (var name in (ReadOnlySpan<string>)["temperature", "topP"])
        {
            if (TryGetMember(config, name, out var number))
            {
                if (number.ValueKind != JsonValueKind.Number)
                {
                    throw ShapeException.Expected($"inferenceConfig.{name}", "a number", number);
                }

                var value = number.GetDouble();
                if (value < 0)
                {
                    violations.Add(Constraint(number.GetRawText(), $"inferenceConfig.{name}", "Member must have value greater than or equal to 0"));
                }
                else if (value > 1)
                {
                    violations.Add(Constraint(number.GetRawText(), $"inferenceConfig.{name}", "Member must have value less than or equal to 1"));
                }
            }
        }

        var stops = new List<string>();
        if (TryGetMember(config, "stopSequences", out var stopArray))
        {
            Expect(stopArray, JsonValueKind.Array, "inferenceConfig.stopSequences");
            var index = 0;
            foreach (var item in stopArray.EnumerateArray())
            {
                index++;
                Expect(item, JsonValueKind.String, $"inferenceConfig.stopSequences.{index}.member");
                var stop = item.GetString()!;
                if (stop.Length == 0)
                {
                    violations.Add(Constraint(stop, $"inferenceConfig.stopSequences.{index}.member", "Member must have length greater than or equal to 1"));
                }
                else
                {
                    stops.Add(stop);
                }
            }

            if (index > MaxStopSequences)
            {
                violations.Add(Constraint(
                    $"[{string.Join(", ", stopArray.EnumerateArray().Select(s => s.GetString()))}]",
                    "inferenceConfig.stopSequences",
                    $"Member must have length less than or equal to {MaxStopSequences}"));
            }
        }

        return new Inference(maxTokens, stops);
    }

    private static List<string> ReadSystem(JsonElement root, List<string> violations)
    {
        var texts = new List<string>();
        if (!TryGetMember(root, "system", out var system))
        {
            return texts;
        }

        Expect(system, JsonValueKind.Array, "system");
        var index = 0;
        foreach (var block in system.EnumerateArray())
        {
            index++;
            Expect(block, JsonValueKind.Object, $"system.{index}.member");
            if (TryGetMember(block, "text", out var text))
            {
                Expect(text, JsonValueKind.String, $"system.{index}.member.text");
                if (text.GetString() is { Length: > 0 } value)
                {
                    texts.Add(value);
                }
                else
                {
                    violations.Add(Constraint(string.Empty, $"system.{index}.member.text", "Member must have length greater than or equal to 1"));
                }
            }
        }

        return texts;
    }

    private static List<Message> ReadMessages(JsonElement root, List<string> violations)
    {
        var messages = new List<Message>();
        if (!TryGetMember(root, "messages", out var array))
        {
            return messages;
        }

        Expect(array, JsonValueKind.Array, "messages");
        var position = 0;
        foreach (var message in array.EnumerateArray())
        {
            position++;
            var path = $"messages.{position}.member";
            Expect(message, JsonValueKind.Object, path);

            var role = string.Empty;
            if (!TryGetMember(message, "role", out var roleElement))
            {
                violations.Add($"Value null at '{path}.role' failed to satisfy constraint: Member must not be null");
            }
            else
            {
                Expect(roleElement, JsonValueKind.String, path + ".role");
                role = roleElement.GetString()!;
                if (!s_roles.Contains(role, StringComparer.Ordinal))
                {
                    violations.Add(Constraint(role, path + ".role", "Member must satisfy enum value set: [user, assistant]"));
                }
            }

            var blocks = new List<Block>();
            if (!TryGetMember(message, "content", out var content))
            {
                violations.Add($"Value null at '{path}.content' failed to satisfy constraint: Member must not be null");
            }
            else
            {
                Expect(content, JsonValueKind.Array, path + ".content");
                var blockPosition = 0;
                foreach (var block in content.EnumerateArray())
                {
                    blockPosition++;
                    blocks.Add(ReadBlock(block, $"{path}.content.{blockPosition}.member", violations));
                }
            }

            messages.Add(new Message(role, blocks));
        }

        return messages;
    }

    private static Block ReadBlock(JsonElement block, string path, List<string> violations)
    {
        Expect(block, JsonValueKind.Object, path);
        var members = s_contentBlockMembers.Where(name => TryGetMember(block, name, out _)).ToArray();
        var result = new Block(members);
        if (members.Length != 1)
        {
            return result;
        }

        var value = block.GetProperty(members[0]);
        switch (members[0])
        {
            case "text":
                Expect(value, JsonValueKind.String, path + ".text");
                return result with { Text = value.GetString() };

            case "image":
                Expect(value, JsonValueKind.Object, path + ".image");
                if (!TryGetMember(value, "format", out var format))
                {
                    violations.Add($"Value null at '{path}.image.format' failed to satisfy constraint: Member must not be null");
                }
                else
                {
                    Expect(format, JsonValueKind.String, path + ".image.format");
                    if (!s_imageFormats.Contains(format.GetString(), StringComparer.Ordinal))
                    {
                        violations.Add(Constraint(format.GetString()!, path + ".image.format", "Member must satisfy enum value set: [png, jpeg, gif, webp]"));
                    }
                }

                string? bytes = null;
                if (!TryGetMember(value, "source", out var source))
                {
                    violations.Add($"Value null at '{path}.image.source' failed to satisfy constraint: Member must not be null");
                }
                else
                {
                    Expect(source, JsonValueKind.Object, path + ".image.source");
                    if (TryGetMember(source, "bytes", out var data))
                    {
                        Expect(data, JsonValueKind.String, path + ".image.source.bytes");
                        bytes = data.GetString();
                    }
                    else if (!TryGetMember(source, "s3Location", out _))
                    {
                        violations.Add($"Value null at '{path}.image.source' failed to satisfy constraint: Member must have one of bytes, s3Location set");
                    }
                }

                return result with { ImageBytes = bytes };

            case "toolUse":
                Expect(value, JsonValueKind.Object, path + ".toolUse");
                var toolUseId = ReadIdentifier(value, "toolUseId", path + ".toolUse", violations);
                ReadIdentifier(value, "name", path + ".toolUse", violations);
                if (!TryGetMember(value, "input", out _))
                {
                    violations.Add($"Value null at '{path}.toolUse.input' failed to satisfy constraint: Member must not be null");
                }

                return result with { ToolUseId = toolUseId };

            case "toolResult":
                Expect(value, JsonValueKind.Object, path + ".toolResult");
                var answered = ReadIdentifier(value, "toolUseId", path + ".toolResult", violations);
                var texts = new List<string>();
                var isEmpty = true;
                if (!TryGetMember(value, "content", out var resultContent))
                {
                    violations.Add($"Value null at '{path}.toolResult.content' failed to satisfy constraint: Member must not be null");
                }
                else
                {
                    Expect(resultContent, JsonValueKind.Array, path + ".toolResult.content");
                    isEmpty = resultContent.GetArrayLength() == 0;
                    foreach (var part in resultContent.EnumerateArray())
                    {
                        if (part.ValueKind != JsonValueKind.Object)
                        {
                            continue;
                        }

                        if (TryGetMember(part, "text", out var text) && text.ValueKind == JsonValueKind.String)
                        {
                            texts.Add(text.GetString()!);
                        }
                        else if (TryGetMember(part, "json", out var json))
                        {
                            texts.Add(json.GetRawText());
                        }
                    }
                }

                var isError = TryGetMember(value, "status", out var status) && status.ValueKind == JsonValueKind.String && status.GetString() == "error";
                return result with { ToolUseId = answered, ToolResultText = string.Join('\n', texts), ToolResultIsEmptyError = isError && isEmpty };

            default:
                return result;
        }
    }

    /// <summary>A <c>ToolUseId</c> or <c>ToolName</c>: 1 to 64 characters of <c>[a-zA-Z0-9_-]</c>.</summary>
    private static string? ReadIdentifier(JsonElement owner, string name, string path, List<string> violations)
    {
        if (!TryGetMember(owner, name, out var element))
        {
            violations.Add($"Value null at '{path}.{name}' failed to satisfy constraint: Member must not be null");
            return null;
        }

        Expect(element, JsonValueKind.String, $"{path}.{name}");
        var value = element.GetString()!;
        if (value.Length is 0 or > MaxIdLength)
        {
            violations.Add(Constraint(value, $"{path}.{name}", value.Length == 0
                ? "Member must have length greater than or equal to 1"
                : $"Member must have length less than or equal to {MaxIdLength}"));
        }
        else if (!IdentifierPattern().IsMatch(value))
        {
            violations.Add(Constraint(value, $"{path}.{name}", "Member must satisfy regular expression pattern: ^[a-zA-Z0-9_-]+$"));
        }

        return value;
    }

    private static ToolConfig? ReadToolConfig(JsonElement root, List<string> violations)
    {
        if (!TryGetMember(root, "toolConfig", out var config))
        {
            return null;
        }

        Expect(config, JsonValueKind.Object, "toolConfig");
        var tools = new List<ToolDefinition>();
        if (!TryGetMember(config, "tools", out var array))
        {
            violations.Add("Value null at 'toolConfig.tools' failed to satisfy constraint: Member must not be null");
        }
        else
        {
            Expect(array, JsonValueKind.Array, "toolConfig.tools");
            if (array.GetArrayLength() == 0)
            {
                violations.Add(Constraint("[]", "toolConfig.tools", "Member must have length greater than or equal to 1"));
            }

            var position = 0;
            foreach (var tool in array.EnumerateArray())
            {
                position++;
                var path = $"toolConfig.tools.{position}.member";
                Expect(tool, JsonValueKind.Object, path);
                if (!TryGetMember(tool, "toolSpec", out var spec))
                {
                    continue; // a cachePoint
                }

                Expect(spec, JsonValueKind.Object, path + ".toolSpec");
                var name = ReadIdentifier(spec, "name", path + ".toolSpec", violations);
                JsonElement? schema = null;
                if (!TryGetMember(spec, "inputSchema", out var inputSchema))
                {
                    violations.Add($"Value null at '{path}.toolSpec.inputSchema' failed to satisfy constraint: Member must not be null");
                }
                else if (TryGetMember(inputSchema, "json", out var json) && json.ValueKind == JsonValueKind.Object)
                {
                    // Cloned: the request document is disposed once parsing ends, and the schema is read later.
                    schema = json.Clone();
                }

                if (name is not null)
                {
                    tools.Add(new ToolDefinition(name, schema));
                }
            }
        }

        var choice = ToolChoiceMode.Auto;
        string? named = null;
        if (TryGetMember(config, "toolChoice", out var toolChoice))
        {
            Expect(toolChoice, JsonValueKind.Object, "toolConfig.toolChoice");
            if (TryGetMember(toolChoice, "any", out _))
            {
                choice = ToolChoiceMode.Required;
            }
            else if (TryGetMember(toolChoice, "tool", out var specific))
            {
                Expect(specific, JsonValueKind.Object, "toolConfig.toolChoice.tool");
                named = ReadIdentifier(specific, "name", "toolConfig.toolChoice.tool", violations);
                choice = ToolChoiceMode.Named;
            }
        }

        return new ToolConfig(tools, choice, named);
    }

    // ----- the conversation rules -----

    private static BedrockError? CheckConversation(IReadOnlyList<Message> messages, ToolConfig? tools)
    {
        if (messages.Count == 0 || messages[0].Role != "user")
        {
            return BedrockError.Validation("A conversation must start with a user message. Try again with a conversation that starts with a user message.");
        }

        for (var i = 1; i < messages.Count; i++)
        {
            if (messages[i].Role == messages[i - 1].Role)
            {
                return BedrockError.Validation(
                    "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.");
            }
        }

        var usesTools = false;
        for (var i = 0; i < messages.Count; i++)
        {
            if (messages[i].Content.Count == 0)
            {
                return BedrockError.Validation($"The content field in the Message object at messages.{i} is empty. Add a ContentBlock object to the content field and try again.");
            }

            for (var j = 0; j < messages[i].Content.Count; j++)
            {
                var block = messages[i].Content[j];
                switch (block.Kind)
                {
                    case null:
                        return BedrockError.Validation(
                            $"The ContentBlock object at messages.{i}.content.{j} must set exactly one of: {string.Join(", ", s_contentBlockMembers)}. "
                            + (block.Members.Count == 0 ? "It sets none." : $"It sets {string.Join(", ", block.Members)}."));
                    case "text" when string.IsNullOrWhiteSpace(block.Text):
                        return BedrockError.Validation($"The text field in the ContentBlock object at messages.{i}.content.{j} is blank. Add text to the text field, and try again.");
                    case "image" when block.ImageBytes is { } bytes && !IsBase64(bytes):
                        return BedrockError.Validation($"The value at messages.{i}.content.{j}.image.source.bytes is not valid base64. Encode the image bytes as base64 and try again.");
                    case "toolResult" when block.ToolResultIsEmptyError:
                        return BedrockError.Validation($"The content field at messages.{i}.content.{j}.toolResult cannot be empty when status value is error.");
                    case "toolUse" or "toolResult":
                        usesTools = true;
                        break;
                }
            }
        }

        if (usesTools && tools is null)
        {
            return BedrockError.Validation("The toolConfig field must be defined when using toolUse and toolResult content blocks.");
        }

        for (var i = 0; i < messages.Count; i++)
        {
            if (messages[i].Role != "user")
            {
                continue;
            }

            var results = messages[i].Content.Where(b => b.Kind == "toolResult").Select(b => b.ToolUseId).ToList();
            var uses = i == 0 ? [] : messages[i - 1].Content.Where(b => b.Kind == "toolUse").Select(b => b.ToolUseId).ToList();
            if (results.Count > uses.Count)
            {
                return BedrockError.Validation($"The number of toolResult blocks at messages.{i}.content exceeds the number of toolUse blocks of previous turn.");
            }

            var unanswered = uses.Where(id => !results.Contains(id)).ToList();
            if (unanswered.Count > 0)
            {
                return BedrockError.Validation($"Expected toolResult blocks at messages.{i}.content for the following Ids: {string.Join(", ", unanswered)}");
            }
        }

        if (tools is { Choice: ToolChoiceMode.Named, NamedTool: { } named } && !tools.Tools.Any(t => t.Name == named))
        {
            return BedrockError.Validation($"The tool '{named}' named in toolConfig.toolChoice is not one of the tools in toolConfig.tools.");
        }

        return null;
    }

    private static List<ChatMessage> ModelView(IReadOnlyList<string> system, IReadOnlyList<Message> messages)
    {
        var view = system.Select(text => new ChatMessage("system", text)).ToList();
        foreach (var message in messages)
        {
            var texts = message.Content.Where(b => b.Kind == "text").Select(b => b.Text!).ToList();
            var results = message.Content.Where(b => b.Kind == "toolResult").Select(b => b.ToolResultText ?? string.Empty).ToList();
            if (texts.Count > 0 || results.Count == 0)
            {
                view.Add(new ChatMessage(message.Role, string.Join('\n', texts)));
            }

            view.AddRange(results.Select(text => new ChatMessage("tool", text)));
        }

        return view;
    }

    // ----- helpers -----

    private static bool TryGetMember(JsonElement owner, string name, out JsonElement value) =>
        owner.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null;

    private static string Constraint(string value, string path, string constraint) =>
        $"Value '{value}' at '{path}' failed to satisfy constraint: {constraint}";

    private static void Expect(JsonElement element, JsonValueKind kind, string path)
    {
        if (element.ValueKind != kind)
        {
            throw ShapeException.Expected(path, kind switch
            {
                JsonValueKind.Object => "an object",
                JsonValueKind.Array => "a list",
                JsonValueKind.String => "a string",
                _ => kind.ToString().ToLower(CultureInfo.InvariantCulture),
            }, element);
        }
    }

    private static bool IsBase64(string value)
    {
        var buffer = new byte[(value.Length * 3 / 4) + 3];
        return value.Length > 0 && Convert.TryFromBase64String(value, buffer, out _);
    }

    [GeneratedRegex("^[a-zA-Z0-9_-]+$")]
    private static partial Regex IdentifierPattern();

    /// <summary>A body whose JSON does not have the request's shape (a string where an object belongs, ...).</summary>
    private sealed class ShapeException(string message) : Exception(message)
    {
        public static ShapeException Expected(string path, string expected, JsonElement actual) =>
            new($"Expected {expected} at '{path}', but found {Describe(actual)}.");

        private static string Describe(JsonElement element) => element.ValueKind switch
        {
            JsonValueKind.Object => "an object",
            JsonValueKind.Array => "a list",
            JsonValueKind.String => "a string",
            JsonValueKind.Number => "a number",
            JsonValueKind.True or JsonValueKind.False => "a boolean",
            _ => "null",
        };
    }
}
