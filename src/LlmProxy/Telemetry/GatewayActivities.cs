using System.Diagnostics;
using LlmProxy.Pipeline;
using LlmProxy.Routing;

namespace LlmProxy.Telemetry;

/// <summary>
/// The gateway's spans, named and tagged after the OpenTelemetry GenAI conventions: one span per request
/// (<c>chat {model}</c>) and one client span per upstream attempt (<c>chat {upstream model}</c>). Starting an
/// activity costs nothing when no listener is registered (tracing off, the default).
/// </summary>
public static class GatewayActivities
{
    public const string SourceName = "LlmProxy";

    internal static readonly ActivitySource Source = new(SourceName);

    internal static Activity? StartRequest(ChatContext chat)
    {
        var activity = Source.StartActivity("chat " + chat.Route.Name, ActivityKind.Internal);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag("gen_ai.operation.name", "chat");
            activity.SetTag("gen_ai.request.model", chat.Route.Name);
            activity.SetTag("llmproxy.tenant", chat.Identity.Tenant.Name);
            activity.SetTag("llmproxy.key_id", chat.Identity.KeyId);
            activity.SetTag("llmproxy.stream", chat.Request.Stream);
            activity.SetTag("llmproxy.request_id", chat.HttpContext.TraceIdentifier);
        }
        return activity;
    }

    internal static void CompleteRequest(Activity? activity, ChatContext chat)
    {
        if (activity is not { IsAllDataRequested: true })
        {
            activity?.Dispose();
            return;
        }
        activity.SetTag("llmproxy.deployment", chat.ServedBy?.Id);
        activity.SetTag("gen_ai.provider.name", chat.ServedBy is { } served ? served.Provider.GenAiProviderName : null);
        activity.SetTag("llmproxy.attempts", chat.Attempts);
        activity.SetTag("llmproxy.cache_hit", chat.CacheHit);
        activity.SetTag("http.response.status_code", chat.HttpContext.Response.StatusCode);
        if (chat.Usage is { } usage)
        {
            activity.SetTag("gen_ai.usage.input_tokens", usage.PromptTokens);
            activity.SetTag("gen_ai.usage.output_tokens", usage.CompletionTokens);
        }
        if (chat.ErrorCode is { } error)
        {
            activity.SetTag("error.type", error);
            activity.SetStatus(ActivityStatusCode.Error);
        }
        activity.Dispose();
    }

    internal static Activity? StartAttempt(ChatContext chat, Deployment deployment)
    {
        var activity = Source.StartActivity("chat " + deployment.UpstreamModel, ActivityKind.Client);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag("gen_ai.operation.name", "chat");
            activity.SetTag("gen_ai.provider.name", deployment.Provider.GenAiProviderName);
            activity.SetTag("gen_ai.request.model", deployment.UpstreamModel);
            activity.SetTag("llmproxy.deployment", deployment.Id);
            activity.SetTag("llmproxy.tenant", chat.Identity.Tenant.Name);
            activity.SetTag("llmproxy.attempt", chat.Attempts + 1);
        }
        return activity;
    }

    internal static void CompleteAttempt(Activity? activity, ChatContext chat, AttemptResult result)
    {
        if (activity is not { IsAllDataRequested: true })
        {
            activity?.Dispose();
            return;
        }
        activity.SetTag("llmproxy.outcome", result.Disposition.ToString());
        if (result.Failure is { } failure)
        {
            activity.SetTag("error.type", UpstreamOutcomes.FromFailure(failure));
            activity.SetStatus(ActivityStatusCode.Error, failure.Reason);
        }
        else if (result.Disposition == AttemptDisposition.Served && chat.Usage is { } usage)
        {
            activity.SetTag("gen_ai.usage.input_tokens", usage.PromptTokens);
            activity.SetTag("gen_ai.usage.output_tokens", usage.CompletionTokens);
        }
        activity.Dispose();
    }
}
