using System.Buffers;
using Microsoft.AspNetCore.Http.Features;

namespace LlmProxy.OpenAi;

/// <summary>Reads a request body into memory, refusing bodies over the configured limit with a 413.</summary>
internal static class RequestBodyReader
{
    public static async Task<(ReadOnlyMemory<byte> Body, GatewayError? Error)> ReadAsync(HttpContext context, long limit)
    {
        var request = context.Request;
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
}
