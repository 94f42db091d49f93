using System.Globalization;
using System.Net.Http.Headers;
using LlmProxy.OpenAi;

namespace LlmProxy.Providers;

/// <summary>How one failed upstream attempt is classified and what the client would see if it were the last.</summary>
/// <param name="ClientStatus">Status returned to the client if no other deployment serves the request.</param>
/// <param name="IsRetryable">Whether another deployment may be tried (and the failure counts against this one's breaker).</param>
/// <param name="Reason">Short machine-friendly reason for logs and metrics, e.g. <c>status_503</c>, <c>connect_error</c>.</param>
public sealed record UpstreamFailure(int ClientStatus, OpenAiError Error, bool IsRetryable, string Reason)
{
    public TimeSpan? RetryAfter { get; init; }

    /// <summary>The upstream's own request id, for correlating with the provider's logs.</summary>
    public string? UpstreamRequestId { get; init; }

    /// <summary>
    /// The HTTP status the failure was classified from: the upstream's, or the one a provider mapped its own error to
    /// (Bedrock's <c>ThrottlingException</c> is a 429). Metrics read the outcome from it when <see cref="Reason"/> is the
    /// provider's own. Null when no status was involved (a connection error).
    /// </summary>
    public int? UpstreamStatus { get; init; }

    /// <summary>
    /// The common mapping of an upstream HTTP status, shared by providers: client errors pass through with
    /// the upstream's message (they are the client's to fix); credential problems and server errors are the
    /// gateway's, so the client gets a gateway message that names the deployment and nothing else of it.
    /// </summary>
    public static UpstreamFailure FromStatus(int status, string deploymentId, OpenAiError? upstreamError, TimeSpan? retryAfter) =>
        Classify(status, deploymentId, upstreamError, retryAfter) with { UpstreamStatus = status };

    private static UpstreamFailure Classify(int status, string deploymentId, OpenAiError? upstreamError, TimeSpan? retryAfter)
    {
        switch (status)
        {
            case 401 or 403:
                return new UpstreamFailure(StatusCodes.Status502BadGateway, new OpenAiError(
                    $"Deployment '{deploymentId}' rejected the gateway's credentials. This is a gateway configuration problem, not a problem with your key.",
                    "upstream_error", null, "upstream_authentication_failed"), IsRetryable: true, $"status_{status}");
            case 429:
                return new UpstreamFailure(StatusCodes.Status429TooManyRequests, new OpenAiError(
                    $"Deployment '{deploymentId}' is rate limited by its provider. Retry later.",
                    "requests", null, "rate_limit_exceeded"), IsRetryable: true, "status_429")
                { RetryAfter = retryAfter };
            case 408 or 504:
                return new UpstreamFailure(StatusCodes.Status504GatewayTimeout, new OpenAiError(
                    $"Deployment '{deploymentId}' timed out.", "upstream_error", null, "upstream_timeout"), IsRetryable: true, $"status_{status}");
            case 503:
                return new UpstreamFailure(StatusCodes.Status503ServiceUnavailable, new OpenAiError(
                    $"Deployment '{deploymentId}' is unavailable.", "upstream_error", null, "upstream_unavailable"), IsRetryable: true, "status_503")
                { RetryAfter = retryAfter };
            case >= 500:
                return new UpstreamFailure(StatusCodes.Status502BadGateway, new OpenAiError(
                    $"Deployment '{deploymentId}' returned an error ({status}).", "upstream_error", null, "upstream_error"), IsRetryable: true, $"status_{status}");
            default:
                // 400, 404, 413, 422...: the upstream judged the request itself; its message helps the client fix it.
                var error = upstreamError ?? new OpenAiError($"Deployment '{deploymentId}' rejected the request ({status}).",
                    GatewayErrors.InvalidRequest, null, null);
                return new UpstreamFailure(status is >= 400 and < 500 ? status : StatusCodes.Status502BadGateway, error, IsRetryable: false, $"status_{status}");
        }
    }

    public static TimeSpan? ParseRetryAfter(HttpResponseHeaders headers)
    {
        if (headers.RetryAfter is { } retryAfter)
        {
            if (retryAfter.Delta is { } delta)
            {
                return delta;
            }
            if (retryAfter.Date is { } date)
            {
                var wait = date - DateTimeOffset.UtcNow;
                return wait > TimeSpan.Zero ? wait : TimeSpan.Zero;
            }
        }
        // OpenAI also sends retry-after-ms.
        if (headers.TryGetValues("retry-after-ms", out var values)
            && double.TryParse(values.FirstOrDefault(), NumberStyles.Float, CultureInfo.InvariantCulture, out var ms) && ms >= 0)
        {
            return TimeSpan.FromMilliseconds(ms);
        }
        return null;
    }
}
