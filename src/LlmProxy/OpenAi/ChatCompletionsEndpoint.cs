using Microsoft.AspNetCore.Http.Features;
using LlmProxy.Configuration;
using LlmProxy.Pipeline;
using LlmProxy.Tenancy;

namespace LlmProxy.OpenAi;

/// <summary><c>POST /v1/chat/completions</c>: reads and validates the request, resolves its route, then runs the chat pipeline.</summary>
internal sealed partial class ChatCompletionsEndpoint(
    GatewayConfigurationProvider configuration,
    ChatPipeline pipeline,
    IEnumerable<IChatRequestCompletionListener> listeners,
    TimeProvider time,
    ILogger<ChatCompletionsEndpoint> logger)
{
    private readonly IChatRequestCompletionListener[] _listeners = listeners.ToArray();

    public async Task HandleAsync(HttpContext http)
    {
        var identity = http.Features.GetRequiredFeature<ITenantFeature>().Identity;
        var startedAt = time.GetUtcNow();
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var state = new ServeState();
        var threw = false;
        try
        {
            await ServeAsync(http, identity, state);
        }
        catch
        {
            threw = true;
            throw;
        }
        finally
        {
            var request = state.Request;
            var chat = state.Chat;
            // An exception is turned into a 500 by the error middleware after this point.
            var status = threw && !http.Response.HasStarted ? StatusCodes.Status500InternalServerError : http.Response.StatusCode;
            var completion = new ChatRequestCompletion(http, identity, request?.Model ?? state.RequestedModel, chat, status,
                System.Diagnostics.Stopwatch.GetElapsedTime(started), startedAt);
            LogCompleted(logger, http.TraceIdentifier, identity.Tenant.Name, identity.KeyId, completion.RequestedModel, chat?.ServedBy?.Id, completion.StatusCode, request?.Stream ?? false,
                chat?.Attempts ?? 0, completion.Elapsed.TotalMilliseconds, chat?.Usage?.PromptTokens, chat?.Usage?.CompletionTokens, chat?.CacheHit ?? false, chat?.ErrorCode,
                chat?.UpstreamRequestId);
            foreach (var listener in _listeners)
            {
                listener.OnCompleted(completion);
            }
        }
    }

    private sealed class ServeState
    {
        public ChatRequest? Request;

        /// <summary>The model the body names, also when the request was refused before it became a <see cref="ChatRequest"/>.</summary>
        public string? RequestedModel;
        public ChatContext? Chat;
    }

    private async Task ServeAsync(HttpContext http, TenantIdentity identity, ServeState state)
    {
        var config = configuration.Current;
        var (body, readError) = await RequestBodyReader.ReadAsync(http, config.MaxRequestBodyBytes);
        if (readError is not null)
        {
            await ErrorResponseWriter.WriteAsync(http, readError);
            return;
        }
        var parsed = ChatRequestParser.TryParse(body, out var request, out var parseError, out state.RequestedModel);
        if (!parsed)
        {
            await ErrorResponseWriter.WriteAsync(http, parseError!);
            return;
        }
        state.Request = request;
        if (!config.Routes.TryGetValue(request!.Model, out var route) || !identity.Tenant.Allows(request.Model))
        {
            await ErrorResponseWriter.WriteAsync(http, GatewayErrors.ModelNotFound(request.Model));
            return;
        }

        var chat = state.Chat = new ChatContext(http, identity, request, route);
        http.Features.Set<IChatContextFeature>(new ChatContextFeature(chat));
        await pipeline.RunAsync(chat);
    }

    // The request id is a field as well as a scope: a log pipeline that drops scopes still sees it.
    [LoggerMessage(EventId = 3001, Level = LogLevel.Information,
        Message = "Chat completion request_id={GatewayRequestId} tenant={Tenant} key={KeyId} model={Model} deployment={Deployment} status={Status} stream={Stream} attempts={Attempts} latency_ms={LatencyMs:F1} prompt_tokens={PromptTokens} completion_tokens={CompletionTokens} cache_hit={CacheHit} error={Error} upstream_request_id={UpstreamRequestId}")]
    private static partial void LogCompleted(ILogger logger, string gatewayRequestId, string tenant, string keyId, string? model, string? deployment, int status, bool stream,
        int attempts, double latencyMs, int? promptTokens, int? completionTokens, bool cacheHit, string? error, string? upstreamRequestId);
}
