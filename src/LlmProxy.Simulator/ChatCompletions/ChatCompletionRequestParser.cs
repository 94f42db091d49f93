using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text.Json;
using LlmProxy.Simulator.OpenAi;

namespace LlmProxy.Simulator.ChatCompletions;

/// <summary>
/// Reads and validates a <c>CreateChatCompletionRequest</c> body the way OpenAI does, with OpenAI's
/// messages, <c>param</c> and <c>code</c>, so a gateway that forwards a malformed request sees the real rejection.
/// Fields the simulator has no use for are ignored, as unknown fields are not an error for OpenAI either.
/// </summary>
internal static class ChatCompletionRequestParser
{
    private const int MaxChoices = 128;
    private const int MaxStopSequences = 4;

    private static readonly string[] s_roles = ["system", "developer", "user", "assistant", "tool", "function"];

    public static bool TryParse(
        ReadOnlyMemory<byte> body,
        [NotNullWhen(true)] out ChatCompletionRequest? request,
        [NotNullWhen(false)] out OpenAiError? error)
    {
        request = null;
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 256 });
        }
        catch (JsonException)
        {
            error = UnparsableBody();
            return false;
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                error = UnparsableBody();
                return false;
            }

            error = Validate(root, out request);
            return error is null;
        }
    }

    private static OpenAiError? Validate(JsonElement root, out ChatCompletionRequest? request)
    {
        request = null;

        if (!root.TryGetProperty("model", out var model) || model.ValueKind == JsonValueKind.Null)
        {
            return MissingParameter("model");
        }

        if (model.ValueKind != JsonValueKind.String)
        {
            return InvalidType("model", "a string", model);
        }

        if (model.GetString() is not { Length: > 0 } modelName)
        {
            return Invalid("model", "Invalid 'model': empty string. Expected a string with minimum length 1, but got an empty string instead.", "empty_string");
        }

        var messagesError = ReadMessages(root, out var messages);
        if (messagesError is not null)
        {
            return messagesError;
        }

        if (ReadOptionalBoolean(root, "stream", out var stream) is { } streamError)
        {
            return streamError;
        }

        var includeUsage = false;
        if (root.TryGetProperty("stream_options", out var streamOptions) && streamOptions.ValueKind != JsonValueKind.Null)
        {
            if (!stream)
            {
                return Invalid("stream_options", "The 'stream_options' parameter is only allowed when 'stream' is enabled.", "invalid_value");
            }

            if (streamOptions.ValueKind != JsonValueKind.Object)
            {
                return InvalidType("stream_options", "an object", streamOptions);
            }

            if (ReadOptionalBoolean(streamOptions, "include_usage", out includeUsage, "stream_options.include_usage") is { } usageError)
            {
                return usageError;
            }
        }

        if (ReadOptionalInteger(root, "n", 1, MaxChoices, out var n) is { } nError)
        {
            return nError;
        }

        if (ReadOptionalInteger(root, "max_tokens", 1, int.MaxValue, out var maxTokens) is { } maxTokensError)
        {
            return maxTokensError;
        }

        if (ReadOptionalInteger(root, "max_completion_tokens", 1, int.MaxValue, out var maxCompletionTokens) is { } maxCompletionError)
        {
            return maxCompletionError;
        }

        if (ReadStop(root, out var stop) is { } stopError)
        {
            return stopError;
        }

        if (ReadTools(root, out var tools) is { } toolsError)
        {
            return toolsError;
        }

        if (ReadToolChoice(root, tools, out var toolChoice, out var namedTool) is { } toolChoiceError)
        {
            return toolChoiceError;
        }

        if (ReadOptionalBoolean(root, "parallel_tool_calls", out var parallel, defaultValue: true) is { } parallelError)
        {
            return parallelError;
        }

        request = new ChatCompletionRequest
        {
            Model = modelName,
            Messages = messages,
            Stream = stream,
            IncludeUsage = includeUsage,
            ChoiceCount = n ?? 1,
            MaxTokens = maxCompletionTokens ?? maxTokens,
            StopSequences = stop,
            Tools = tools,
            ToolChoice = toolChoice,
            NamedTool = namedTool,
            ParallelToolCalls = parallel,
        };
        return null;
    }

    private static OpenAiError? ReadMessages(JsonElement root, out IReadOnlyList<ChatMessage> messages)
    {
        messages = [];
        if (!root.TryGetProperty("messages", out var array) || array.ValueKind == JsonValueKind.Null)
        {
            return MissingParameter("messages");
        }

        if (array.ValueKind != JsonValueKind.Array)
        {
            return InvalidType("messages", "an array of objects", array);
        }

        if (array.GetArrayLength() == 0)
        {
            return Invalid("messages", "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.", "empty_array");
        }

        var result = new List<ChatMessage>(array.GetArrayLength());
        var index = 0;
        foreach (var message in array.EnumerateArray())
        {
            var param = $"messages[{index}]";
            if (message.ValueKind != JsonValueKind.Object)
            {
                return InvalidType(param, "an object", message);
            }

            if (!message.TryGetProperty("role", out var role) || role.ValueKind == JsonValueKind.Null)
            {
                return MissingParameter(param + ".role");
            }

            if (role.ValueKind != JsonValueKind.String)
            {
                return InvalidType(param + ".role", "a string", role);
            }

            var roleName = role.GetString()!;
            if (!s_roles.Contains(roleName, StringComparer.Ordinal))
            {
                return Invalid(
                    param + ".role",
                    $"Invalid value: '{roleName}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.",
                    "invalid_value");
            }

            result.Add(new ChatMessage(roleName, ReadText(message)));
            index++;
        }

        messages = result;
        return null;
    }

    /// <summary>The text a model would read: a string content, or the <c>text</c> of each text part of an array content.</summary>
    private static string ReadText(JsonElement message)
    {
        if (!message.TryGetProperty("content", out var content))
        {
            return string.Empty;
        }

        switch (content.ValueKind)
        {
            case JsonValueKind.String:
                return content.GetString()!;
            case JsonValueKind.Array:
                var parts = new List<string>();
                foreach (var part in content.EnumerateArray())
                {
                    if (part.ValueKind == JsonValueKind.Object
                        && part.TryGetProperty("text", out var text)
                        && text.ValueKind == JsonValueKind.String)
                    {
                        parts.Add(text.GetString()!);
                    }
                }

                return string.Join('\n', parts);
            default:
                return string.Empty;
        }
    }

    private static OpenAiError? ReadStop(JsonElement root, out IReadOnlyList<string> stop)
    {
        stop = [];
        if (!root.TryGetProperty("stop", out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind == JsonValueKind.String)
        {
            stop = value.GetString() is { Length: > 0 } single ? [single] : [];
            return null;
        }

        if (value.ValueKind != JsonValueKind.Array)
        {
            return InvalidType("stop", "a string or an array of strings", value);
        }

        if (value.GetArrayLength() > MaxStopSequences)
        {
            return Invalid(
                "stop",
                $"Invalid 'stop': array too long. Expected an array with maximum length {MaxStopSequences}, but got an array with length {value.GetArrayLength()} instead.",
                "array_above_max_length");
        }

        var sequences = new List<string>();
        var index = 0;
        foreach (var item in value.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String)
            {
                return InvalidType($"stop[{index}]", "a string", item);
            }

            if (item.GetString() is { Length: > 0 } sequence)
            {
                sequences.Add(sequence);
            }

            index++;
        }

        stop = sequences;
        return null;
    }

    private static OpenAiError? ReadTools(JsonElement root, out IReadOnlyList<ToolDefinition> tools)
    {
        tools = [];
        if (!root.TryGetProperty("tools", out var array) || array.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (array.ValueKind != JsonValueKind.Array)
        {
            return InvalidType("tools", "an array of objects", array);
        }

        var result = new List<ToolDefinition>();
        var index = 0;
        foreach (var tool in array.EnumerateArray())
        {
            var param = $"tools[{index}]";
            if (tool.ValueKind != JsonValueKind.Object)
            {
                return InvalidType(param, "an object", tool);
            }

            if (!tool.TryGetProperty("function", out var function) || function.ValueKind != JsonValueKind.Object)
            {
                return MissingParameter(param + ".function");
            }

            if (!function.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String || name.GetString() is not { Length: > 0 } toolName)
            {
                return MissingParameter(param + ".function.name");
            }

            // Cloned because the request document is disposed once parsing ends, and the schema is read later.
            JsonElement? parameters = function.TryGetProperty("parameters", out var schema) && schema.ValueKind == JsonValueKind.Object
                ? schema.Clone()
                : null;
            result.Add(new ToolDefinition(toolName, parameters));
            index++;
        }

        tools = result;
        return null;
    }

    private static OpenAiError? ReadToolChoice(JsonElement root, IReadOnlyList<ToolDefinition> tools, out ToolChoiceMode mode, out string? namedTool)
    {
        mode = ToolChoiceMode.Auto;
        namedTool = null;
        if (!root.TryGetProperty("tool_choice", out var choice) || choice.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (choice.ValueKind == JsonValueKind.String)
        {
            switch (choice.GetString())
            {
                case "none":
                    mode = ToolChoiceMode.None;
                    return null;
                case "auto":
                    mode = ToolChoiceMode.Auto;
                    break;
                case "required":
                    mode = ToolChoiceMode.Required;
                    break;
                default:
                    return Invalid(
                        "tool_choice",
                        $"Invalid value: '{choice.GetString()}'. Supported values are: 'none', 'auto', and 'required'.",
                        "invalid_value");
            }
        }
        else if (choice.ValueKind == JsonValueKind.Object
            && choice.TryGetProperty("function", out var function)
            && function.ValueKind == JsonValueKind.Object
            && function.TryGetProperty("name", out var name)
            && name.ValueKind == JsonValueKind.String)
        {
            mode = ToolChoiceMode.Named;
            namedTool = name.GetString();
        }
        else
        {
            return InvalidType("tool_choice", "a string or an object naming a function", choice);
        }

        if (tools.Count == 0)
        {
            return Invalid("tool_choice", "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.", null);
        }

        var requested = namedTool;
        if (mode == ToolChoiceMode.Named && !tools.Any(t => t.Name == requested))
        {
            return Invalid("tool_choice", $"Invalid value for 'tool_choice': no function named '{requested}' was specified in the 'tools' parameter.", null);
        }

        return null;
    }

    private static OpenAiError? ReadOptionalBoolean(JsonElement owner, string name, out bool value, string? param = null, bool defaultValue = false)
    {
        value = defaultValue;
        if (!owner.TryGetProperty(name, out var element) || element.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (element.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
        {
            return InvalidType(param ?? name, "a boolean", element);
        }

        value = element.GetBoolean();
        return null;
    }

    private static OpenAiError? ReadOptionalInteger(JsonElement owner, string name, int minimum, int maximum, out int? value)
    {
        value = null;
        if (!owner.TryGetProperty(name, out var element) || element.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (element.ValueKind != JsonValueKind.Number || !element.TryGetInt64(out var number))
        {
            return InvalidType(name, "an integer", element);
        }

        if (number < minimum)
        {
            return Invalid(
                name,
                $"Invalid '{name}': integer below minimum value. Expected a value >= {minimum}, but got {number} instead.",
                "integer_below_min_value");
        }

        if (number > maximum)
        {
            return Invalid(
                name,
                $"Invalid '{name}': integer above maximum value. Expected a value <= {maximum}, but got {number} instead.",
                "integer_above_max_value");
        }

        value = (int)number;
        return null;
    }

    private static OpenAiError UnparsableBody() => new(
        400,
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. "
        + "The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
        OpenAiError.InvalidRequestType);

    private static OpenAiError MissingParameter(string param) =>
        Invalid(param, $"Missing required parameter: '{param}'.", "missing_required_parameter");

    private static OpenAiError InvalidType(string param, string expected, JsonElement actual) =>
        Invalid(param, $"Invalid type for '{param}': expected {expected}, but got {Describe(actual)} instead.", "invalid_type");

    private static OpenAiError Invalid(string param, string message, string? code) =>
        new(400, message, OpenAiError.InvalidRequestType, param, code);

    private static string Describe(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.String => "a string",
        JsonValueKind.Number when element.TryGetInt64(out _) => "an integer",
        JsonValueKind.Number => "a decimal",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        JsonValueKind.Null => "null",
        _ => element.ValueKind.ToString().ToLower(CultureInfo.InvariantCulture),
    };
}
