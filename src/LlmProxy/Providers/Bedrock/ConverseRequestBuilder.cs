using System.Buffers.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LlmProxy.OpenAi;
using LlmProxy.Providers.Bedrock.Wire;

namespace LlmProxy.Providers.Bedrock;

/// <summary>
/// OpenAI chat completion request to a Converse request. Everything Bedrock cannot express is rejected with
/// a 400 that names the parameter (<see cref="ChatRequestRejectedException"/>), never silently changed;
/// the one exception is a deployment that opted into dropping unsupported top-level parameters.
/// </summary>
internal sealed class ConverseRequestBuilder
{
    private const string ProviderName = "Amazon Bedrock";
    private static readonly JsonDocumentOptions ArgumentsOptions = new() { MaxDepth = 64 };

    private readonly ChatRequest _request;
    private readonly bool _dropUnsupported;
    private readonly List<SystemContentBlock> _system = [];
    private readonly List<BedrockMessage> _messages = [];
    private readonly List<string> _historyToolNames = [];
    private bool _historyHasToolBlocks;

    public ConverseRequestBuilder(ChatRequest request, bool dropUnsupported)
    {
        _request = request;
        _dropUnsupported = dropUnsupported;
    }

    public ConverseRequest Build()
    {
        CheckParameters();
        AddMessages();
        return new ConverseRequest
        {
            Messages = _messages,
            System = _system.Count > 0 ? _system : null,
            InferenceConfig = BuildInferenceConfig(),
            ToolConfig = BuildToolConfig(),
        };
    }

    private void CheckParameters()
    {
        foreach (var (name, value) in _request.Body)
        {
            if (!BedrockParameters.IsUnsupported(name, value) || _dropUnsupported)
            {
                continue;
            }
            var message = BedrockParameters.Rules.ContainsKey(name)
                ? $"The '{name}' parameter is not supported for model '{_request.Model}': it is served by {ProviderName}, which cannot honour it."
                : $"Unrecognized request argument supplied: '{name}'. The model '{_request.Model}' is served by {ProviderName}, which does not know it.";
            if (name == "n")
            {
                message = $"'n' must be 1 for model '{_request.Model}': it is served by {ProviderName}, which returns one choice per request.";
            }
            throw Reject(name, message, "unsupported_parameter");
        }
    }

    // ---- messages -------------------------------------------------------------------------------------

    private void AddMessages()
    {
        var messages = _request.Messages;
        var firstConversationIndex = -1;
        for (var i = 0; i < messages.Count; i++)
        {
            var message = (JsonObject)messages[i]!; // the parser checked every message is an object with a known role
            var path = $"messages[{i}]";
            var role = message["role"]!.GetValue<string>();
            switch (role)
            {
                case "system" or "developer":
                    foreach (var text in ReadTextContent(message["content"], path))
                    {
                        if (text.Length > 0)
                        {
                            _system.Add(new SystemContentBlock { Text = text });
                        }
                    }
                    continue;
                case "user":
                    Append(BedrockMessage.User, ReadUserContent(message["content"], path));
                    break;
                case "assistant":
                    var blocks = ReadAssistantContent(message, path);
                    if (blocks.Count == 0)
                    {
                        // Nothing to say (no text, no tool calls): Bedrock rejects empty content, and leaving the turn out changes nothing.
                        continue;
                    }
                    if (firstConversationIndex < 0)
                    {
                        throw Reject(path, $"{ProviderName} requires the conversation to start with a user message, but {path} is an assistant message " +
                            "with no user message before it. Put a user message first.", "invalid_value");
                    }
                    Append(BedrockMessage.Assistant, blocks);
                    break;
                case "tool":
                    Append(BedrockMessage.User, [ReadToolResult(message, path)]);
                    break;
                default: // "function": the deprecated function-calling message
                    throw Reject($"{path}.role", $"Messages with role '{role}' are not supported for {ProviderName}; use tool calls and 'tool' messages.",
                        "unsupported_parameter");
            }
            firstConversationIndex = firstConversationIndex < 0 ? i : firstConversationIndex;
        }
        if (_messages.Count == 0)
        {
            throw Reject("messages", $"{ProviderName} needs at least one user message; the request has only system or developer messages.", "invalid_value");
        }
    }

    /// <summary>Converse wants user and assistant turns to alternate: a turn with the same role as the previous one is merged into it.</summary>
    private void Append(string role, List<ContentBlock> blocks)
    {
        if (_messages.Count > 0 && _messages[^1].Role == role)
        {
            _messages[^1].Content!.AddRange(blocks);
        }
        else
        {
            _messages.Add(new BedrockMessage { Role = role, Content = blocks });
        }
    }

    /// <summary>Text of a string content or of text parts (and refusal parts, which only assistant messages have).</summary>
    private static List<string> ReadTextContent(JsonNode? content, string path, bool allowRefusal = false)
    {
        switch (content)
        {
            case null:
                return [];
            case JsonValue value when value.GetValueKind() == JsonValueKind.String:
                return [value.GetValue<string>()];
            case JsonArray parts:
                var texts = new List<string>(parts.Count);
                for (var j = 0; j < parts.Count; j++)
                {
                    var partPath = $"{path}.content[{j}]";
                    var part = parts[j] as JsonObject ?? throw Reject(partPath, $"'{partPath}' must be a content part object.", "invalid_value");
                    var type = ReadString(part, "type", partPath);
                    if (type != "text" && !(allowRefusal && type == "refusal"))
                    {
                        throw Reject($"{partPath}.type", $"Content parts of type '{type}' are not supported in this message for {ProviderName}; only text is.",
                            "unsupported_parameter");
                    }
                    texts.Add(ReadString(part, type, partPath));
                }
                return texts;
            default:
                throw Reject($"{path}.content", $"'{path}.content' must be a string or an array of content parts.", "invalid_value");
        }
    }

    private static List<ContentBlock> ReadUserContent(JsonNode? content, string path)
    {
        if (content is not JsonArray parts)
        {
            if (content is JsonValue value && value.GetValueKind() == JsonValueKind.String)
            {
                return [new ContentBlock { Text = value.GetValue<string>() }];
            }
            throw Reject($"{path}.content", $"'{path}.content' must be a string or an array of content parts.", "invalid_value");
        }
        var blocks = new List<ContentBlock>(parts.Count);
        for (var j = 0; j < parts.Count; j++)
        {
            var partPath = $"{path}.content[{j}]";
            var part = parts[j] as JsonObject ?? throw Reject(partPath, $"'{partPath}' must be a content part object.", "invalid_value");
            var type = ReadString(part, "type", partPath);
            blocks.Add(type switch
            {
                "text" => new ContentBlock { Text = ReadString(part, "text", partPath) },
                "image_url" => new ContentBlock { Image = ReadImage(part, partPath) },
                _ => throw Reject($"{partPath}.type", $"Content parts of type '{type}' are not supported for {ProviderName}; use text and image_url parts.",
                    "unsupported_parameter"),
            });
        }
        return blocks;
    }

    /// <summary>
    /// Only inline images (<c>data:</c> URLs): the gateway never fetches a URL on a client's behalf, since that
    /// would let clients make the gateway reach hosts on its network (SSRF).
    /// </summary>
    private static ImageBlock ReadImage(JsonObject part, string partPath)
    {
        var urlPath = $"{partPath}.image_url.url";
        var url = part["image_url"] is JsonObject image && image["url"] is JsonValue value && value.GetValueKind() == JsonValueKind.String
            ? value.GetValue<string>()
            : throw Reject($"{partPath}.image_url", $"'{partPath}.image_url' must be an object with a 'url' string.", "invalid_value");

        if (!url.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
        {
            throw Reject(urlPath, Uri.TryCreate(url, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
                ? $"Image URLs are not supported for {ProviderName}: the gateway does not download images. Send the image inline as a base64 data URL (data:image/png;base64,...)."
                : $"'{urlPath}' must be a base64 data URL (data:image/png;base64,...).", "invalid_image_url");
        }
        var comma = url.IndexOf(',');
        var header = comma < 0 ? "" : url[5..comma];
        if (comma < 0 || !header.EndsWith(";base64", StringComparison.OrdinalIgnoreCase))
        {
            throw Reject(urlPath, $"'{urlPath}' must be a base64 data URL (data:image/png;base64,...).", "invalid_image_url");
        }
        var mediaType = header[..^";base64".Length].ToLowerInvariant();
        var format = mediaType switch
        {
            "image/png" => "png",
            "image/jpeg" or "image/jpg" => "jpeg",
            "image/gif" => "gif",
            "image/webp" => "webp",
            _ => throw Reject(urlPath, $"Image type '{(mediaType.Length == 0 ? "(none)" : mediaType)}' is not supported for {ProviderName}; use PNG, JPEG, GIF or WebP.",
                "invalid_image_format"),
        };
        var data = url.AsSpan(comma + 1);
        if (data.IsEmpty || !Base64.IsValid(data))
        {
            throw Reject(urlPath, $"'{urlPath}' does not contain valid base64 image data.", "invalid_image_url");
        }
        return new ImageBlock { Format = format, Source = new ImageSource { Bytes = data.ToString() } };
    }

    private List<ContentBlock> ReadAssistantContent(JsonObject message, string path)
    {
        var blocks = new List<ContentBlock>();
        foreach (var text in ReadTextContent(message["content"], path, allowRefusal: true))
        {
            // An assistant turn that only calls tools usually carries content "" or null; an empty text block is invalid for Bedrock.
            if (text.Length > 0)
            {
                blocks.Add(new ContentBlock { Text = text });
            }
        }
        if (message["function_call"] is { } functionCall && functionCall.GetValueKind() != JsonValueKind.Null)
        {
            throw Reject($"{path}.function_call", $"'function_call' (deprecated) is not supported for {ProviderName}; use 'tool_calls'.", "unsupported_parameter");
        }
        switch (message["tool_calls"])
        {
            case null:
                break;
            case JsonArray calls:
                for (var j = 0; j < calls.Count; j++)
                {
                    blocks.Add(new ContentBlock { ToolUse = ReadToolCall(calls[j], $"{path}.tool_calls[{j}]") });
                }
                break;
            case var other when other.GetValueKind() == JsonValueKind.Null:
                break;
            default:
                throw Reject($"{path}.tool_calls", $"'{path}.tool_calls' must be an array.", "invalid_value");
        }
        return blocks;
    }

    private ToolUseBlock ReadToolCall(JsonNode? node, string path)
    {
        var call = node as JsonObject ?? throw Reject(path, $"'{path}' must be a tool call object.", "invalid_value");
        if (call["type"] is JsonValue type && type.GetValueKind() == JsonValueKind.String && type.GetValue<string>() != "function")
        {
            throw Reject($"{path}.type", $"Tool calls of type '{type.GetValue<string>()}' are not supported for {ProviderName}; only 'function' is.",
                "unsupported_parameter");
        }
        var id = ReadString(call, "id", path);
        var function = call["function"] as JsonObject ?? throw Reject($"{path}.function", $"'{path}.function' must be an object.", "invalid_value");
        var name = ReadString(function, "name", $"{path}.function");
        var argumentsPath = $"{path}.function.arguments";
        var arguments = function["arguments"] switch
        {
            null => "",
            JsonValue value when value.GetValueKind() == JsonValueKind.String => value.GetValue<string>(),
            _ => throw Reject(argumentsPath, $"'{argumentsPath}' must be a string of JSON.", "invalid_value"),
        };

        JsonNode input;
        if (string.IsNullOrWhiteSpace(arguments))
        {
            input = new JsonObject(); // a call without arguments
        }
        else
        {
            JsonNode? parsed;
            var utf8 = System.Text.Encoding.UTF8.GetBytes(arguments);
            try
            {
                parsed = JsonNode.Parse(utf8, documentOptions: ArgumentsOptions);
            }
            catch (JsonException)
            {
                throw Reject(argumentsPath, $"'{argumentsPath}' is not valid JSON; {ProviderName} needs the tool call's arguments as a JSON object.", "invalid_value");
            }
            // JSON inside a string is parsed here for the first time: its strings get the check the body's got at the door
            // (an escaped lone surrogate, "\\ud800" in the body, is valid text outside and invalid inside).
            if (JsonTextValidator.Validate(utf8, ArgumentsOptions.MaxDepth) is not null)
            {
                throw Reject(argumentsPath, $"'{argumentsPath}' holds a string that is not valid Unicode text (an unpaired surrogate escape such as \\ud800).",
                    "invalid_value");
            }
            input = parsed switch
            {
                JsonObject obj => obj,
                null => new JsonObject(),
                _ => throw Reject(argumentsPath, $"'{argumentsPath}' must be a JSON object; {ProviderName} needs the tool call's arguments as an object.", "invalid_value"),
            };
        }
        _historyHasToolBlocks = true;
        if (!_historyToolNames.Contains(name, StringComparer.Ordinal))
        {
            _historyToolNames.Add(name);
        }
        return new ToolUseBlock { ToolUseId = id, Name = name, Input = input };
    }

    private ContentBlock ReadToolResult(JsonObject message, string path)
    {
        var id = ReadString(message, "tool_call_id", path);
        var texts = ReadTextContent(message["content"], path);
        _historyHasToolBlocks = true;
        return new ContentBlock
        {
            ToolResult = new ToolResultBlock
            {
                ToolUseId = id,
                Content = texts.Count == 0 ? [new ToolResultContentBlock { Text = "" }] : texts.ConvertAll(t => new ToolResultContentBlock { Text = t }),
            },
        };
    }

    // ---- inference parameters -------------------------------------------------------------------------

    private InferenceConfiguration? BuildInferenceConfig()
    {
        var body = _request.Body;
        var config = new InferenceConfiguration
        {
            MaxTokens = ReadPositiveInt("max_completion_tokens") ?? ReadPositiveInt("max_tokens"),
            Temperature = ReadNumber("temperature"),
            TopP = ReadNumber("top_p"),
            StopSequences = ReadStop(body["stop"]),
        };
        return config is { MaxTokens: null, Temperature: null, TopP: null, StopSequences: null } ? null : config;
    }

    private int? ReadPositiveInt(string name)
    {
        var node = _request.Body[name];
        if (node is null)
        {
            return null;
        }
        if (node is JsonValue value && value.GetValueKind() == JsonValueKind.Number && value.TryGetValue(out int result) && result >= 1)
        {
            return result;
        }
        throw Reject(name, $"'{name}' must be a positive integer.", "invalid_value");
    }

    private double? ReadNumber(string name)
    {
        var node = _request.Body[name];
        if (node is null)
        {
            return null;
        }
        // 1e999999 reads as infinity, which JSON cannot carry to Bedrock: out of range is the client's error like a wrong type.
        if (node is JsonValue value && value.GetValueKind() == JsonValueKind.Number && value.TryGetValue(out double result) && double.IsFinite(result))
        {
            return result;
        }
        throw Reject(name, $"'{name}' must be a finite number.", "invalid_value");
    }

    private static List<string>? ReadStop(JsonNode? stop)
    {
        switch (stop)
        {
            case null:
                return null;
            case JsonValue value when value.GetValueKind() == JsonValueKind.String:
                return [value.GetValue<string>()];
            case JsonArray list:
                var sequences = new List<string>(list.Count);
                foreach (var item in list)
                {
                    sequences.Add(item is JsonValue s && s.GetValueKind() == JsonValueKind.String
                        ? s.GetValue<string>()
                        : throw Reject("stop", "'stop' must be a string or an array of strings.", "invalid_value"));
                }
                return sequences.Count > 0 ? sequences : null;
            default:
                throw Reject("stop", "'stop' must be a string or an array of strings.", "invalid_value");
        }
    }

    // ---- tools ----------------------------------------------------------------------------------------

    private ToolConfiguration? BuildToolConfig()
    {
        var tools = ReadTools();
        var choice = ReadToolChoice(out var choiceIsNone);
        if (tools.Count > 0 && !choiceIsNone)
        {
            return new ToolConfiguration { Tools = tools, ToolChoice = choice };
        }
        if (choice is { Any: not null } or { Tool: not null })
        {
            throw Reject("tool_choice", "'tool_choice' asks for a tool call, but the request has no 'tools'.", "invalid_value");
        }
        if (_historyHasToolBlocks)
        {
            // Bedrock rejects toolUse/toolResult blocks in the history unless a toolConfig is present, even when no
            // tool may be called now. Declare the tools the history mentions, with an open schema.
            return new ToolConfiguration
            {
                Tools = _historyToolNames.ConvertAll(name => new Tool
                {
                    ToolSpec = new ToolSpecification
                    {
                        Name = name,
                        InputSchema = new ToolInputSchema { Json = new JsonObject { ["type"] = "object", ["properties"] = new JsonObject() } },
                    },
                }),
            };
        }
        return null;
    }

    private List<Tool> ReadTools()
    {
        var node = _request.Body["tools"];
        if (node is null)
        {
            return [];
        }
        var array = node as JsonArray ?? throw Reject("tools", "'tools' must be an array.", "invalid_value");
        var tools = new List<Tool>(array.Count);
        for (var i = 0; i < array.Count; i++)
        {
            var path = $"tools[{i}]";
            var tool = array[i] as JsonObject ?? throw Reject(path, $"'{path}' must be a tool object.", "invalid_value");
            var type = ReadString(tool, "type", path);
            if (type != "function")
            {
                throw Reject($"{path}.type", $"Tools of type '{type}' are not supported for {ProviderName}; only 'function' tools are.", "unsupported_parameter");
            }
            var function = tool["function"] as JsonObject ?? throw Reject($"{path}.function", $"'{path}.function' must be an object.", "invalid_value");
            var name = ReadString(function, "name", $"{path}.function");
            string? description = null;
            if (function["description"] is { } descriptionNode && descriptionNode.GetValueKind() != JsonValueKind.Null)
            {
                description = descriptionNode.GetValueKind() == JsonValueKind.String
                    ? descriptionNode.GetValue<string>()
                    : throw Reject($"{path}.function.description", $"'{path}.function.description' must be a string.", "invalid_value");
            }
            var parameters = function["parameters"] switch
            {
                null => new JsonObject { ["type"] = "object", ["properties"] = new JsonObject() },
                JsonObject schema => schema,
                _ => throw Reject($"{path}.function.parameters", $"'{path}.function.parameters' must be a JSON Schema object.", "invalid_value"),
            };
            tools.Add(new Tool
            {
                ToolSpec = new ToolSpecification
                {
                    Name = name,
                    // Bedrock rejects an empty description.
                    Description = string.IsNullOrEmpty(description) ? null : description,
                    InputSchema = new ToolInputSchema { Json = parameters },
                },
            });
        }
        return tools;
    }

    private ToolChoice? ReadToolChoice(out bool none)
    {
        none = false;
        var node = _request.Body["tool_choice"];
        switch (node)
        {
            case null:
                return null;
            case JsonValue value when value.GetValueKind() == JsonValueKind.String:
                switch (value.GetValue<string>())
                {
                    case "auto": return new ToolChoice { Auto = new EmptyStructure() };
                    case "required": return new ToolChoice { Any = new EmptyStructure() };
                    case "none": none = true; return null;
                    default: throw Reject("tool_choice", "'tool_choice' must be 'none', 'auto', 'required' or a named function.", "invalid_value");
                }
            case JsonObject choice:
                var type = ReadString(choice, "type", "tool_choice");
                if (type != "function")
                {
                    throw Reject("tool_choice.type", $"'tool_choice' of type '{type}' is not supported for {ProviderName}; use 'auto', 'required', 'none' or a named function.",
                        "unsupported_parameter");
                }
                var function = choice["function"] as JsonObject ?? throw Reject("tool_choice.function", "'tool_choice.function' must be an object.", "invalid_value");
                return new ToolChoice { Tool = new SpecificToolChoice { Name = ReadString(function, "name", "tool_choice.function") } };
            default:
                throw Reject("tool_choice", "'tool_choice' must be a string or an object.", "invalid_value");
        }
    }

    // ---- helpers --------------------------------------------------------------------------------------

    private static string ReadString(JsonObject obj, string name, string path)
    {
        return obj[name] switch
        {
            JsonValue value when value.GetValueKind() == JsonValueKind.String => value.GetValue<string>(),
            null => throw new ChatRequestRejectedException(GatewayErrors.MissingParameter($"{path}.{name}")),
            _ => throw Reject($"{path}.{name}", $"'{path}.{name}' must be a string.", "invalid_value"),
        };
    }

    private static ChatRequestRejectedException Reject(string param, string message, string code) =>
        new(GatewayErrors.BadRequest(message, param, code));
}
