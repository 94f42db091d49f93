using System.Text.Json.Nodes;

namespace LlmProxy.OpenAi;

/// <summary>
/// A validated <c>POST /v1/chat/completions</c> body. The whole JSON object is kept so that parameters the
/// gateway does not interpret still reach OpenAI-compatible upstreams unchanged; the fields the gateway
/// acts on are read once here.
/// </summary>
public sealed class ChatRequest
{
    internal ChatRequest(JsonObject body, string model, bool stream, bool includeUsage, JsonArray messages)
    {
        Body = body;
        Model = model;
        Stream = stream;
        IncludeUsage = includeUsage;
        Messages = messages;
    }

    /// <summary>The request as the client sent it. Translators copy it before changing anything.</summary>
    public JsonObject Body { get; }

    /// <summary>The client-facing model name, as the client sent it.</summary>
    public string Model { get; }

    public bool Stream { get; }

    /// <summary>Whether the client asked for the final usage chunk (<c>stream_options.include_usage</c>).</summary>
    public bool IncludeUsage { get; }

    public JsonArray Messages { get; }
}
