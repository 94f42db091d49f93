using Microsoft.AspNetCore.Http.Features;
using LlmProxy.Configuration;
using LlmProxy.Pipeline;
using LlmProxy.Tenancy;

namespace LlmProxy.OpenAi;

/// <summary><c>POST /v1/chat/completions</c>: reads and validates the request, resolves its route, then runs the chat pipeline.</summary>
internal sealed partial class ChatCompletionsEndpoint(GatewayConfigurationProvider configuration, ChatPipeline pipeline, ILogger<ChatCompletionsEndpoint> logger)
{
    public async Task HandleAsync(HttpContext http)
    {
        var identity = http.Features.GetRequiredFeature<ITenantFeature>().Identity;
        var config = configuration.Current;

        var (body, readError) = await RequestBodyReader.ReadAsync(http, config.MaxRequestBodyBytes);
        if (readError is not null)
        {
            await ErrorResponseWriter.WriteAsync(http, readError);
            return;
        }
        if (!ChatRequestParser.TryParse(body, out var request, out var parseError))
        {
            await ErrorResponseWriter.WriteAsync(http, parseError!);
            return;
        }
        if (!config.Routes.TryGetValue(request!.Model, out var route) || !identity.Tenant.Allows(request.Model))
        {
            await ErrorResponseWriter.WriteAsync(http, GatewayErrors.ModelNotFound(request.Model));
            return;
        }

        var chat = new ChatContext(http, identity, request, route);
        http.Features.Set<IChatContextFeature>(new ChatContextFeature(chat));
        try
        {
            await pipeline.RunAsync(chat);
        }
        finally
        {
            LogCompleted(logger, identity.Tenant.Name, identity.KeyId, request.Model, chat.ServedBy?.Id, http.Response.StatusCode, request.Stream,
                chat.Attempts, chat.Elapsed.TotalMilliseconds, chat.Usage?.PromptTokens, chat.Usage?.CompletionTokens, chat.CacheHit, chat.ErrorCode);
        }
    }

    [LoggerMessage(EventId = 3001, Level = LogLevel.Information,
        Message = "Chat completion tenant={Tenant} key={KeyId} model={Model} deployment={Deployment} status={Status} stream={Stream} attempts={Attempts} latency_ms={LatencyMs:F1} prompt_tokens={PromptTokens} completion_tokens={CompletionTokens} cache_hit={CacheHit} error={Error}")]
    private static partial void LogCompleted(ILogger logger, string tenant, string keyId, string model, string? deployment, int status, bool stream,
        int attempts, double latencyMs, int? promptTokens, int? completionTokens, bool cacheHit, string? error);
}
