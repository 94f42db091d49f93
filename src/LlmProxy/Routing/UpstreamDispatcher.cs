using System.Diagnostics;
using LlmProxy.Forwarding;
using LlmProxy.OpenAi;
using LlmProxy.Pipeline;
using LlmProxy.Providers;
using Polly.CircuitBreaker;
using Yarp.ReverseProxy.Forwarder;

namespace LlmProxy.Routing;

/// <summary>
/// The last stage of the chat pipeline: sends the request to the route's deployments, in the order the
/// selector chose, through YARP's forwarder and each deployment's breaker, until one answers. A failure
/// before anything reached the client moves on to the next candidate within the route's retry budget;
/// the client only sees the last failure when every attempt failed.
/// </summary>
public sealed partial class UpstreamDispatcher(IHttpForwarder forwarder, IDeploymentSelector selector, TimeProvider time, ILogger<UpstreamDispatcher> logger)
{
    /// <summary>Raised after each attempt; metrics subscribe.</summary>
    public event Action<ChatContext, Deployment, AttemptResult>? AttemptCompleted;

    /// <summary>Raised when a request moves from a failed deployment to the next one, with the failure that caused it.</summary>
    public event Action<ChatContext, Deployment, UpstreamFailure?>? FailedOver;

    public async Task DispatchAsync(ChatContext chat)
    {
        var http = chat.HttpContext;
        var selection = selector.Select(chat.Route);
        if (selection.Candidates.Count == 0)
        {
            await WriteUnavailableAsync(chat, selection.EarliestAvailableAt);
            return;
        }

        var budget = chat.Route.Retry;
        var deadline = time.GetUtcNow() + budget.Deadline;
        UpstreamFailure? lastFailure = null;
        Deployment? previous = null;
        foreach (var health in selection.Candidates)
        {
            if (chat.Attempts >= budget.MaxAttempts)
            {
                break;
            }
            var remaining = deadline - time.GetUtcNow();
            if (remaining <= TimeSpan.Zero)
            {
                lastFailure ??= Timeout(health.Deployment);
                break;
            }
            if (!health.TryEnter(out var isProbe))
            {
                continue; // opened, drained or probing since selection
            }

            var deployment = health.Deployment;
            if (previous is not null)
            {
                LogFailover(logger, chat.Request.Model, previous.Id, deployment.Id, lastFailure?.Reason ?? "unknown");
                FailedOver?.Invoke(chat, previous, lastFailure);
            }

            AttemptResult? result = null;
            var activity = Telemetry.GatewayActivities.StartAttempt(chat, deployment);
            try
            {
                result = await health.Pipeline.ExecuteAsync(
                    static (state, _) => state.self.AttemptAsync(state.chat, state.deployment, state.remaining),
                    (self: this, chat, deployment, remaining), CancellationToken.None);
            }
            catch (BrokenCircuitException)
            {
                // Polly's ratio breaker opened (or is probing) since selection; try the next one.
                activity?.Dispose();
                continue;
            }
            finally
            {
                health.Exit(isProbe, result);
            }

            Telemetry.GatewayActivities.CompleteAttempt(activity, chat, result);
            AttemptCompleted?.Invoke(chat, deployment, result);
            if (result.Disposition != AttemptDisposition.Failed)
            {
                return;
            }
            lastFailure = result.Failure!;
            LogAttemptFailed(logger, deployment.Id, chat.Attempts, lastFailure.Reason, lastFailure.UpstreamRequestId);
            if (!lastFailure.IsRetryable || result.EndedByRetryDeadline)
            {
                break;
            }
            previous = deployment;
        }

        if (lastFailure is null)
        {
            // Every candidate was taken out of rotation between selection and its turn.
            await WriteUnavailableAsync(chat, selector.Select(chat.Route).EarliestAvailableAt);
            return;
        }
        // The client's error came from an upstream's answer: keep that answer's id for support cases with the provider.
        chat.UpstreamRequestId = lastFailure.UpstreamRequestId;
        if (lastFailure.UpstreamRequestId is { } upstreamRequestId)
        {
            http.Response.Headers[GatewayHeaders.UpstreamRequestId] = upstreamRequestId;
        }
        await WriteErrorAsync(chat, new GatewayError(lastFailure.ClientStatus, lastFailure.Error)
        {
            RetryAfterSeconds = RetryAfterSeconds(lastFailure),
        });
    }

    /// <summary>
    /// The upstream's own wait when it gave one. A 429 without one (throttling often comes without) still gets
    /// <see cref="DefaultRateLimitedRetryAfter"/>: a client told to retry later should be told when, and SDKs
    /// that honour <c>Retry-After</c> would otherwise fall back on their own, often much longer, backoff.
    /// </summary>
    internal static int? RetryAfterSeconds(UpstreamFailure failure) => failure.RetryAfter switch
    {
        { } wait => Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)),
        null when failure.ClientStatus == StatusCodes.Status429TooManyRequests => (int)DefaultRateLimitedRetryAfter.TotalSeconds,
        _ => null,
    };

    /// <summary><c>Retry-After</c> of a 429 passed on from an upstream that did not say how long to wait.</summary>
    internal static readonly TimeSpan DefaultRateLimitedRetryAfter = TimeSpan.FromSeconds(1);

    private async ValueTask<AttemptResult> AttemptAsync(ChatContext chat, Deployment deployment, TimeSpan remaining)
    {
        var http = chat.HttpContext;
        var started = Stopwatch.GetTimestamp();
        chat.Attempts++;
        var translator = deployment.Provider.CreateTranslator(chat.Request, deployment);
        UpstreamRequest upstreamRequest;
        try
        {
            upstreamRequest = translator.TranslateRequest();
        }
        catch (ChatRequestRejectedException ex)
        {
            // The request cannot be expressed for this backend: the client's to fix, not the deployment's fault.
            return new AttemptResult(AttemptDisposition.Failed,
                new UpstreamFailure(ex.Error.StatusCode, ex.Error.Error, IsRetryable: false, "rejected_by_translator"), TimeSpan.Zero);
        }

        var transformer = new AttemptTransformer(chat, deployment, translator, upstreamRequest);
        using var attemptDeadline = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
        attemptDeadline.CancelAfter(remaining < deployment.Timeouts.Total ? remaining : deployment.Timeouts.Total);
        var requestConfig = new ForwarderRequestConfig { ActivityTimeout = deployment.Timeouts.FirstByte };

        var error = await forwarder.SendAsync(http, deployment.DestinationPrefix, deployment.Invoker, requestConfig, transformer, attemptDeadline.Token);
        var duration = Stopwatch.GetElapsedTime(started);

        if (http.RequestAborted.IsCancellationRequested)
        {
            chat.ErrorCode ??= "client_disconnected";
            chat.ServedBy ??= transformer.Responded ? deployment : null;
            return new AttemptResult(AttemptDisposition.Cancelled, null, duration);
        }

        var failure = transformer.Failure ?? transformer.StreamFailureBeforeFirstByte;
        if (http.Response.HasStarted || (failure is null && transformer.Responded && error == ForwarderError.None))
        {
            chat.ServedBy = deployment;
            // A stream that started and then broke carried an error event to the client.
            return chat.ErrorCode is null || !chat.Request.Stream
                ? new AttemptResult(AttemptDisposition.Served, null, duration)
                : new AttemptResult(AttemptDisposition.FailedAfterFirstByte, null, duration);
        }

        failure ??= FromForwarderError(deployment, error, http, attemptDeadline.IsCancellationRequested);
        if (failure.UpstreamRequestId is null && transformer.UpstreamRequestId is { } upstreamRequestId)
        {
            // An upstream that answered, then failed (a bad body, an error as the stream's first event), still gave its id.
            failure = failure with { UpstreamRequestId = upstreamRequestId };
        }
        // Forget this attempt's status and headers before the next one (YARP refuses a response that looks set).
        http.Response.Clear();
        http.Features.Set<IForwarderErrorFeature>(null);
        // Timers fire on a coarser clock than the deadline is read from: an attempt cut by the deadline may leave the
        // loop a few milliseconds that would start a pointless next attempt.
        return new AttemptResult(AttemptDisposition.Failed, failure, duration)
        {
            EndedByRetryDeadline = attemptDeadline.IsCancellationRequested && remaining <= deployment.Timeouts.Total,
        };
    }

    private static UpstreamFailure Timeout(Deployment deployment) => new(StatusCodes.Status504GatewayTimeout, new OpenAiError(
        $"Deployment '{deployment.Id}' did not respond in time.", "upstream_error", null, "upstream_timeout"), IsRetryable: true, "timeout");

    private static UpstreamFailure FromForwarderError(Deployment deployment, ForwarderError error, HttpContext http, bool deadlinePassed)
    {
        var timedOut = deadlinePassed || error is ForwarderError.RequestTimedOut
            || http.Features.Get<IForwarderErrorFeature>()?.Exception is TimeoutException or TaskCanceledException;
        return timedOut
            ? Timeout(deployment)
            : new UpstreamFailure(StatusCodes.Status502BadGateway, new OpenAiError(
                $"Deployment '{deployment.Id}' could not be reached.", "upstream_error", null, "upstream_unreachable"), IsRetryable: true,
                error == ForwarderError.Request ? "connect_error" : "forwarder_" + error.ToString().ToLowerInvariant());
    }

    private Task WriteUnavailableAsync(ChatContext chat, DateTimeOffset? earliest)
    {
        int? retryAfter = earliest is { } at && at != DateTimeOffset.MaxValue
            ? Math.Max(1, (int)Math.Ceiling((at - time.GetUtcNow()).TotalSeconds))
            : null;
        return WriteErrorAsync(chat, new GatewayError(StatusCodes.Status503ServiceUnavailable, new OpenAiError(
            $"No deployment of model '{chat.Request.Model}' is available right now.", "upstream_error", null, "no_deployment_available"))
        {
            RetryAfterSeconds = retryAfter,
        });
    }

    private static Task WriteErrorAsync(ChatContext chat, GatewayError error)
    {
        chat.ErrorCode = error.Error.Code ?? error.Error.Type;
        if (chat.Attempts > 0)
        {
            // A failed request tells how many deployments it tried, as a served one does.
            chat.HttpContext.Response.Headers[GatewayHeaders.Attempts] = chat.Attempts.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        return ErrorResponseWriter.WriteAsync(chat.HttpContext, error);
    }

    [LoggerMessage(EventId = 2001, Level = LogLevel.Warning, Message = "Upstream attempt {Attempt} on deployment {DeploymentId} failed: {Reason} (upstream request id {UpstreamRequestId})")]
    private static partial void LogAttemptFailed(ILogger logger, string deploymentId, int attempt, string reason, string? upstreamRequestId);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Information, Message = "Failover for model {Model}: {FromDeployment} -> {ToDeployment} after {Reason}")]
    private static partial void LogFailover(ILogger logger, string model, string fromDeployment, string toDeployment, string reason);
}
