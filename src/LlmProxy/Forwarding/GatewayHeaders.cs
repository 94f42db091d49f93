namespace LlmProxy.Forwarding;

/// <summary>Response headers the gateway adds. Documented in the README.</summary>
public static class GatewayHeaders
{
    public const string RequestId = "x-request-id";

    /// <summary>Id of the deployment whose response the client received.</summary>
    public const string Deployment = "x-llmproxy-deployment";

    /// <summary>Upstream attempts made for the request, failovers included.</summary>
    public const string Attempts = "x-llmproxy-attempts";

    /// <summary>The serving provider's own request id, for support cases with the provider.</summary>
    public const string UpstreamRequestId = "x-llmproxy-upstream-request-id";
}
