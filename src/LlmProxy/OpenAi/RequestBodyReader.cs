using System.Buffers;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Net.Http.Headers;

namespace LlmProxy.OpenAi;

/// <summary>
/// Reads a JSON request body into memory: refuses a declared media type other than JSON with a 415, and bodies over the
/// configured limit with a 413.
/// </summary>
internal static class RequestBodyReader
{
    public static async Task<(ReadOnlyMemory<byte> Body, GatewayError? Error)> ReadAsync(HttpContext context, long limit)
    {
        var request = context.Request;
        if (CheckContentType(request.ContentType) is { } mediaTypeError)
        {
            return (default, mediaTypeError);
        }
        if (request.ContentLength is { } declared && declared > limit)
        {
            return (default, GatewayErrors.RequestTooLarge(limit));
        }
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } sizeFeature)
        {
            // Let the server enforce the same limit; +1 so that our own check below is the one that reports it.
            sizeFeature.MaxRequestBodySize = limit + 1;
        }

        // With a declared length the body lands in one array of exactly that size (+1 for the read that sees its end);
        // asking for a fixed read size instead made the buffer grow past the body on every request, the largest
        // allocation of the whole request. Without one, the buffer starts small and doubles as the body arrives.
        var expected = request.ContentLength is { } length and > 0 ? (int)Math.Min(length, limit) : 0;
        var buffer = new ArrayBufferWriter<byte>(expected > 0 ? expected + 1 : 4096);
        try
        {
            while (true)
            {
                var memory = buffer.GetMemory(Math.Max(1, expected - buffer.WrittenCount + 1));
                var read = await request.Body.ReadAsync(memory, context.RequestAborted);
                if (read == 0)
                {
                    return (buffer.WrittenMemory, null);
                }
                buffer.Advance(read);
                if (buffer.WrittenCount > limit)
                {
                    return (default, GatewayErrors.RequestTooLarge(limit));
                }
            }
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return (default, GatewayErrors.RequestTooLarge(limit));
        }
    }

    /// <summary>
    /// The 415 for a body declared as anything but JSON, or null. Accepted: no <c>Content-Type</c> at all (OpenAI's own API
    /// accepts that too, and reads the body as JSON), and <c>application/json</c> with any parameters, provided a
    /// <c>charset</c>, when given, is UTF-8 (the only encoding JSON may be sent in between systems, RFC 8259).
    /// </summary>
    internal static GatewayError? CheckContentType(string? contentType)
    {
        if (string.IsNullOrWhiteSpace(contentType))
        {
            return null;
        }
        if (MediaTypeHeaderValue.TryParse(contentType, out var parsed)
            && parsed.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase))
        {
            var charset = HeaderUtilities.RemoveQuotes(parsed.Charset);
            if (!charset.HasValue || charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase) || charset.Equals("utf8", StringComparison.OrdinalIgnoreCase))
            {
                return null;
            }
            return GatewayErrors.UnsupportedMediaType($"The request body must be UTF-8 JSON; charset '{Shorten(charset.Value)}' is not supported.");
        }
        return GatewayErrors.UnsupportedMediaType(
            $"Content-Type '{Shorten(contentType)}' is not supported: send the body as application/json (or without a Content-Type).");
    }

    private static string? Shorten(string? text) => text is { Length: > 100 } ? text[..100] + "…" : text;
}
