using System.Text.Json;
using System.Text.Json.Nodes;

namespace LlmProxy.OpenAi;

/// <summary>
/// Parses and validates the parts of a chat completion request that the gateway itself relies on.
/// Everything else is the upstream's to judge; the gateway does not second-guess parameters it forwards.
/// </summary>
public static class ChatRequestParser
{
    private static readonly JsonNodeOptions NodeOptions = new() { PropertyNameCaseInsensitive = false };
    private static readonly JsonDocumentOptions DocumentOptions = new() { MaxDepth = 64 };
    private static readonly HashSet<string> Roles = ["system", "developer", "user", "assistant", "tool", "function"];

    public static bool TryParse(ReadOnlyMemory<byte> body, out ChatRequest? request, out GatewayError? error) =>
        TryParse(body, out request, out error, out _);

    /// <summary>
    /// Parses <paramref name="body"/>. <paramref name="model"/> is the <c>model</c> the client named, when the body has a
    /// readable one, even if the request is refused for another reason (so that a refusal is still counted under its model).
    /// </summary>
    public static bool TryParse(ReadOnlyMemory<byte> body, out ChatRequest? request, out GatewayError? error, out string? model)
    {
        request = null;
        model = null;
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(body.Span, NodeOptions, DocumentOptions);
        }
        catch (JsonException ex)
        {
            error = GatewayErrors.InvalidJson(ex.LineNumber is { } line
                ? $"invalid JSON at line {line + 1}, position {ex.BytePositionInLine + 1}"
                : "invalid JSON");
            return false;
        }

        if (root is not JsonObject obj)
        {
            error = GatewayErrors.InvalidJson("the body must be a JSON object");
            return false;
        }

        // Every string once, before any stage turns one into text: invalid UTF-8 or a lone surrogate is the client's error.
        error = JsonTextValidator.Validate(body.Span, DocumentOptions.MaxDepth);
        if (error is not null)
        {
            model = ReadableModel(obj);
            return false;
        }

        try
        {
            error = Validate(obj, out var validModel, out var stream, out var includeUsage, out var messages);
            if (error is null)
            {
                model = validModel;
                request = new ChatRequest(obj, validModel!, stream, includeUsage, messages!);
                return true;
            }
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or FormatException)
        {
            // Duplicate property names and other structural problems surface lazily from JsonObject.
            error = GatewayErrors.InvalidJson(ex is ArgumentException ? "duplicate property name" : "unexpected value type");
        }
        model ??= ReadableModel(obj);
        return false;
    }

    /// <summary>The body's <c>model</c> when it is a string that is valid text; null otherwise.</summary>
    private static string? ReadableModel(JsonObject body)
    {
        try
        {
            return body["model"] is JsonValue value && value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : null;
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException)
        {
            // A lone surrogate or invalid UTF-8 in the name itself, or a duplicate property name.
            return null;
        }
    }

    private static GatewayError? Validate(JsonObject body, out string? model, out bool stream, out bool includeUsage, out JsonArray? messages)
    {
        model = null;
        stream = false;
        includeUsage = false;
        messages = null;

        var modelNode = body["model"];
        if (modelNode is null)
        {
            return GatewayErrors.MissingParameter("model");
        }
        if (modelNode.GetValueKind() != JsonValueKind.String || string.IsNullOrWhiteSpace(model = modelNode.GetValue<string>()))
        {
            return GatewayErrors.InvalidParameter("model", "'model' must be a non-empty string.");
        }

        var messagesNode = body["messages"];
        if (messagesNode is null)
        {
            return GatewayErrors.MissingParameter("messages");
        }
        if (messagesNode is not JsonArray array)
        {
            return GatewayErrors.InvalidParameter("messages", "'messages' must be an array of message objects.");
        }
        if (array.Count == 0)
        {
            return GatewayErrors.InvalidParameter("messages", "'messages' must contain at least one message.");
        }
        for (var i = 0; i < array.Count; i++)
        {
            if (array[i] is not JsonObject message)
            {
                return GatewayErrors.InvalidParameter($"messages[{i}]", $"'messages[{i}]' must be an object.");
            }
            var role = message["role"];
            if (role is null)
            {
                return GatewayErrors.MissingParameter($"messages[{i}].role");
            }
            if (role.GetValueKind() != JsonValueKind.String || !Roles.Contains(role.GetValue<string>()))
            {
                return GatewayErrors.InvalidParameter($"messages[{i}].role",
                    $"'messages[{i}].role' must be one of: {string.Join(", ", Roles)}.");
            }
        }
        messages = array;

        if (body["stream"] is { } streamNode)
        {
            switch (streamNode.GetValueKind())
            {
                case JsonValueKind.True: stream = true; break;
                case JsonValueKind.False or JsonValueKind.Null: break;
                default: return GatewayErrors.InvalidParameter("stream", "'stream' must be a boolean.");
            }
        }

        if (body["stream_options"] is { } options)
        {
            if (options is JsonObject optionsObject)
            {
                includeUsage = optionsObject["include_usage"]?.GetValueKind() == JsonValueKind.True;
            }
            else if (options.GetValueKind() != JsonValueKind.Null)
            {
                return GatewayErrors.InvalidParameter("stream_options", "'stream_options' must be an object.");
            }
        }
        return null;
    }
}
