namespace LlmProxy.OpenAi;

/// <summary>A minimal-API result that writes a <see cref="GatewayError"/> in OpenAI's shape.</summary>
public sealed class OpenAiErrorResult(GatewayError error) : IResult
{
    public GatewayError Error { get; } = error;

    public Task ExecuteAsync(HttpContext httpContext) => ErrorResponseWriter.WriteAsync(httpContext, Error);
}
