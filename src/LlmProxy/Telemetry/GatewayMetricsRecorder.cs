using LlmProxy.Configuration;
using LlmProxy.Pipeline;
using LlmProxy.Routing;

namespace LlmProxy.Telemetry;

/// <summary>
/// Feeds <see cref="GatewayMetrics"/> from the gateway's own hooks: the completion listener for every request,
/// the dispatcher's attempt and failover events, the breaker registry for the state gauge, and a pipeline stage
/// (registered first, so it wraps every other stage) for in-flight requests and streams.
/// </summary>
internal sealed class GatewayMetricsRecorder : IChatRequestCompletionListener, IChatMiddleware
{
    private readonly GatewayMetrics _metrics;
    private readonly GatewayConfigurationProvider _configuration;

    public GatewayMetricsRecorder(GatewayMetrics metrics, GatewayConfigurationProvider configuration, UpstreamDispatcher dispatcher, DeploymentHealthRegistry registry)
    {
        _metrics = metrics;
        _configuration = configuration;
        dispatcher.AttemptCompleted += OnAttemptCompleted;
        dispatcher.FailedOver += (chat, from, failure) => _metrics.RecordFailover(chat.Route.Name, from.Id, UpstreamOutcomes.FromFailure(failure));
        metrics.SetBreakerStateSource(() => registry.All.Select(h => (h.Deployment.Id, (int)h.State)));
    }

    public async Task InvokeAsync(ChatContext context, ChatDelegate next)
    {
        using var request = _metrics.TrackRequestInFlight();
        using var stream = context.Request.Stream ? _metrics.TrackStreamInFlight() : default;
        var activity = GatewayActivities.StartRequest(context);
        try
        {
            await next(context);
        }
        finally
        {
            GatewayActivities.CompleteRequest(activity, context);
        }
    }

    public void OnCompleted(ChatRequestCompletion completion)
    {
        if (completion.Chat is { } chat)
        {
            _metrics.RecordRequestCompleted(chat, completion.StatusCode);
            return;
        }
        _metrics.RecordRequestCompleted(new RequestOutcome(completion.Identity.Tenant.Name,
            MetricLabels.Model(completion.RequestedModel, _configuration.Current.Routes), null, null,
            completion.ClientDisconnected && !completion.HttpContext.Response.HasStarted ? RequestOutcome.ClientClosedRequest : completion.StatusCode,
            Stream: false, completion.Elapsed));
    }

    private void OnAttemptCompleted(ChatContext chat, Deployment deployment, AttemptResult result)
    {
        var outcome = result.Disposition switch
        {
            AttemptDisposition.Served => UpstreamOutcomes.Success,
            AttemptDisposition.FailedAfterFirstByte => UpstreamOutcomes.StreamError,
            AttemptDisposition.Cancelled => UpstreamOutcomes.ClientDisconnected,
            _ => UpstreamOutcomes.FromFailure(result.Failure),
        };
        _metrics.RecordUpstreamAttempt(deployment, outcome, result.Duration);
    }
}
