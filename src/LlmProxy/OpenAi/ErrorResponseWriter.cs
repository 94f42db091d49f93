using System.Globalization;
using System.Text.Json;

namespace LlmProxy.OpenAi;

/// <summary>Writes <see cref="GatewayError"/>s as OpenAI-shaped JSON responses.</summary>
public static class ErrorResponseWriter
{
    public static Task WriteAsync(HttpContext context, GatewayError error)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(error);
        var response = context.Response;
        response.StatusCode = error.StatusCode;
        response.ContentType = "application/json";
        if (error.RetryAfterSeconds is { } seconds)
        {
            response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        }
        var body = Serialize(error.Error);
        response.ContentLength = body.Length;
        return response.Body.WriteAsync(body, context.RequestAborted).AsTask();
    }

    public static byte[] Serialize(OpenAiError error) =>
        JsonSerializer.SerializeToUtf8Bytes(new OpenAiErrorEnvelope(error), OpenAiJsonContext.Default.OpenAiErrorEnvelope);
}
