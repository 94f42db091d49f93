using LlmProxy.OpenAi;

namespace LlmProxy.Hosting;

/// <summary>
/// Last line of defence: any exception becomes an OpenAI-shaped error with no internals in it, and bare
/// 404/405 responses from routing get OpenAI-shaped bodies.
/// </summary>
internal sealed partial class GatewayErrorMiddleware(RequestDelegate next, ILogger<GatewayErrorMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        try
        {
            await next(context);
        }
        catch (BadHttpRequestException ex) when (!context.Response.HasStarted)
        {
            // Malformed HTTP from the client (bad framing, body too large, read timeout): its fault, say so.
            context.Response.Clear();
            var error = ex.StatusCode == StatusCodes.Status413PayloadTooLarge
                ? GatewayErrors.RequestTooLarge(context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize ?? 0)
                : new GatewayError(ex.StatusCode, new OpenAiError("The request could not be read: " + ex.Message, GatewayErrors.InvalidRequest, null, "bad_request"));
            await ErrorResponseWriter.WriteAsync(context, error);
            return;
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; nobody is left to answer.
            return;
        }
        catch (Exception ex)
        {
            LogUnhandled(logger, ex);
            if (context.Response.HasStarted)
            {
                context.Abort();
                return;
            }
            context.Response.Clear();
            await ErrorResponseWriter.WriteAsync(context, GatewayErrors.Internal());
            return;
        }

        if (!context.Response.HasStarted && context.Response.ContentLength is null && string.IsNullOrEmpty(context.Response.ContentType))
        {
            switch (context.Response.StatusCode)
            {
                case StatusCodes.Status404NotFound:
                    await ErrorResponseWriter.WriteAsync(context, GatewayErrors.UnknownPath(context.Request.Method, context.Request.Path));
                    break;
                case StatusCodes.Status405MethodNotAllowed:
                    await ErrorResponseWriter.WriteAsync(context, GatewayErrors.MethodNotAllowed(context.Request.Method, context.Request.Path));
                    break;
            }
        }
    }

    [LoggerMessage(EventId = 9001, Level = LogLevel.Error, Message = "Unhandled exception while serving the request")]
    private static partial void LogUnhandled(ILogger logger, Exception exception);
}
