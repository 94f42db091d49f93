using LlmProxy.Forwarding;
using LlmProxy.OpenAi;
using LlmProxy.Pipeline;
using LlmProxy.Providers;
using Yarp.ReverseProxy.Forwarder;

namespace LlmProxy.Routing;

/// <summary>
/// The last stage of the chat pipeline: sends the request to the route's deployments in candidate order
/// through YARP's forwarder until one answers. A failure before anything reached the client moves on to
/// the next candidate; the client only sees the last failure when every candidate failed.
/// </summary>
public sealed partial class UpstreamDispatcher(IHttpForwarder forwarder, IDeploymentSelector selector, ILogger<UpstreamDispatcher> logger)
{
    public async Task DispatchAsync(ChatContext chat)
    {
        var http = chat.HttpContext;
        var candidates = selector.SelectCandidates(chat.Route);
        if (candidates.Count == 0)
        {
            await WriteErrorAsync(chat, new GatewayError(StatusCodes.Status503ServiceUnavailable, new OpenAiError(
                $"No deployment of model '{chat.Request.Model}' is available.", "upstream_error", null, "no_deployment_available")));
            return;
        }

        UpstreamFailure? lastFailure = null;
        foreach (var deployment in candidates)
        {
            chat.Attempts++;
            var translator = deployment.Provider.CreateTranslator(chat.Request, deployment);
            UpstreamRequest upstreamRequest;
            try
            {
                upstreamRequest = translator.TranslateRequest();
            }
            catch (ChatRequestRejectedException ex)
            {
                await WriteErrorAsync(chat, ex.Error);
                return;
            }

            var transformer = new AttemptTransformer(chat, deployment, translator, upstreamRequest);
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
            deadline.CancelAfter(deployment.Timeouts.Total);
            var requestConfig = new ForwarderRequestConfig { ActivityTimeout = deployment.Timeouts.FirstByte };

            var error = await forwarder.SendAsync(http, deployment.DestinationPrefix, deployment.Invoker, requestConfig, transformer, deadline.Token);

            if (http.RequestAborted.IsCancellationRequested)
            {
                chat.ErrorCode ??= "client_disconnected";
                return;
            }

            var failure = transformer.Failure ?? transformer.StreamFailureBeforeFirstByte;
            if (failure is null && transformer.Responded && (error == ForwarderError.None || http.Response.HasStarted))
            {
                chat.ServedBy = deployment;
                return;
            }
            if (http.Response.HasStarted)
            {
                // Bytes reached the client; it cannot be given another answer. The stream carried an error event.
                chat.ServedBy = deployment;
                return;
            }

            failure ??= FromForwarderError(deployment, error, http, deadline.IsCancellationRequested);
            LogAttemptFailed(logger, deployment.Id, chat.Attempts, failure.Reason, failure.UpstreamRequestId);
            lastFailure = failure;

            // Forget this attempt's status and headers before the next one (YARP refuses a response that looks set).
            http.Response.Clear();
            http.Features.Set<IForwarderErrorFeature>(null);
            if (!failure.IsRetryable)
            {
                break;
            }
        }

        var final = lastFailure!;
        await WriteErrorAsync(chat, new GatewayError(final.ClientStatus, final.Error)
        {
            RetryAfterSeconds = final.RetryAfter is { } wait ? (int)Math.Ceiling(wait.TotalSeconds) : null,
        });
    }

    private static UpstreamFailure FromForwarderError(Deployment deployment, ForwarderError error, HttpContext http, bool deadlinePassed)
    {
        var timedOut = deadlinePassed || error is ForwarderError.RequestTimedOut
            || http.Features.Get<IForwarderErrorFeature>()?.Exception is TimeoutException or TaskCanceledException;
        return timedOut
            ? new UpstreamFailure(StatusCodes.Status504GatewayTimeout, new OpenAiError(
                $"Deployment '{deployment.Id}' did not respond in time.", "upstream_error", null, "upstream_timeout"), IsRetryable: true, "timeout")
            : new UpstreamFailure(StatusCodes.Status502BadGateway, new OpenAiError(
                $"Deployment '{deployment.Id}' could not be reached.", "upstream_error", null, "upstream_unreachable"), IsRetryable: true,
                error == ForwarderError.Request ? "connect_error" : "forwarder_" + error.ToString().ToLowerInvariant());
    }

    private static Task WriteErrorAsync(ChatContext chat, GatewayError error)
    {
        chat.ErrorCode = error.Error.Code ?? error.Error.Type;
        return ErrorResponseWriter.WriteAsync(chat.HttpContext, error);
    }

    [LoggerMessage(EventId = 2001, Level = LogLevel.Warning, Message = "Upstream attempt {Attempt} on deployment {DeploymentId} failed: {Reason} (upstream request id {UpstreamRequestId})")]
    private static partial void LogAttemptFailed(ILogger logger, string deploymentId, int attempt, string reason, string? upstreamRequestId);
}
