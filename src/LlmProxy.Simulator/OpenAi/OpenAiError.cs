using System.Buffers;
using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace LlmProxy.Simulator.OpenAi;

/// <summary>
/// An error in OpenAI's shape (<c>ErrorResponse</c> in the OpenAPI spec): <c>{"error":{"message","type","param","code"}}</c>,
/// all four always present, <c>param</c> and <c>code</c> null when they do not apply.
/// </summary>
internal sealed record OpenAiError(int StatusCode, string Message, string Type, string? Param = null, string? Code = null)
{
    internal const string InvalidRequestType = "invalid_request_error";
    internal const string ServerErrorType = "server_error";
    internal const string ServerErrorMessage = "The server had an error while processing your request.";

    /// <summary>The body OpenAI sends for a status it produces itself, so a <c>Status</c> fault looks like the real thing.</summary>
    public static OpenAiError ForStatus(int statusCode) => statusCode switch
    {
        400 => new(400, "The request was invalid.", InvalidRequestType),
        401 => new(401, "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.", InvalidRequestType, Code: "invalid_api_key"),
        403 => new(403, "You are not allowed to sample from this model.", InvalidRequestType, Code: "unsupported_country_region_territory"),
        404 => new(404, "The model does not exist or you do not have access to it.", InvalidRequestType, Code: "model_not_found"),
        408 => new(408, "Request timed out.", "timeout"),
        409 => new(409, "The request conflicted with another request.", InvalidRequestType),
        413 => new(413, "The request body is too large.", InvalidRequestType),
        422 => new(422, "The request could not be processed.", InvalidRequestType),
        429 => new(429, "Rate limit reached for requests. Please try again later.", "requests", Code: "rate_limit_exceeded"),
        500 => new(500, ServerErrorMessage, ServerErrorType),
        502 => new(502, "Bad gateway.", ServerErrorType),
        503 => new(503, "The server is overloaded or not ready yet.", ServerErrorType),
        504 => new(504, "The server did not respond in time.", ServerErrorType),
        >= 500 => new(statusCode, ServerErrorMessage, ServerErrorType),
        _ => new(statusCode, "The request was rejected.", InvalidRequestType),
    };

    /// <summary>The event OpenAI puts in a stream that fails after it started.</summary>
    public static OpenAiError MidStream() =>
        new(500, ServerErrorMessage, ServerErrorType);

    public static OpenAiError InvalidUrl(HttpRequest request) =>
        new(StatusCodes.Status404NotFound, $"Invalid URL ({request.Method} {request.Path})", InvalidRequestType);

    public void WriteTo(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        writer.WriteStartObject("error");
        writer.WriteString("message", Message);
        writer.WriteString("type", Type);
        WriteStringOrNull(writer, "param", Param);
        WriteStringOrNull(writer, "code", Code);
        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    public byte[] ToUtf8Json()
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, WireJson.WriterOptions))
        {
            WriteTo(writer);
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Writes the error as the whole response, with <c>Retry-After</c> when given.</summary>
    public async Task WriteResponseAsync(HttpResponse response, int? retryAfterSeconds = null)
    {
        var body = ToUtf8Json();
        response.StatusCode = StatusCode;
        response.ContentType = "application/json";
        response.ContentLength = body.Length;
        if (retryAfterSeconds is { } seconds)
        {
            response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        }

        await response.Body.WriteAsync(body, response.HttpContext.RequestAborted);
    }

    private static void WriteStringOrNull(Utf8JsonWriter writer, string name, string? value)
    {
        if (value is null)
        {
            writer.WriteNull(name);
        }
        else
        {
            writer.WriteString(name, value);
        }
    }
}
