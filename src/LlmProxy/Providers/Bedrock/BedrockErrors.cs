using System.Collections.Frozen;
using System.Text.Json;
using LlmProxy.OpenAi;
using LlmProxy.Providers.Bedrock.Wire;

namespace LlmProxy.Providers.Bedrock;

/// <summary>
/// Bedrock error types (HTTP error responses and exception events of a stream) to what the client sees.
/// The mapping goes through <see cref="UpstreamFailure.FromStatus"/> so that Bedrock errors read like the
/// same failure from any other provider: only validation errors carry Bedrock's own message, since they
/// are the client's to fix; the rest name the deployment and the error type and nothing of the upstream.
/// </summary>
internal static class BedrockErrors
{
    private enum Kind
    {
        Validation,
        Throttled,
        Credentials,
        NotFound,
        Timeout,
        Unavailable,
        ServerError,
    }

    /// <summary>Keys are matched case-insensitively: HTTP errors say <c>ThrottlingException</c>, stream events <c>throttlingException</c>.</summary>
    private static readonly FrozenDictionary<string, (string Name, Kind Kind)> Kinds = new (string Name, Kind Kind)[]
    {
        ("ValidationException", Kind.Validation),
        ("ThrottlingException", Kind.Throttled),
        ("ServiceQuotaExceededException", Kind.Throttled),
        ("AccessDeniedException", Kind.Credentials),
        ("UnrecognizedClientException", Kind.Credentials),
        ("InvalidSignatureException", Kind.Credentials),
        ("ExpiredTokenException", Kind.Credentials),
        ("IncompleteSignatureException", Kind.Credentials),
        ("MissingAuthenticationTokenException", Kind.Credentials),
        ("ResourceNotFoundException", Kind.NotFound),
        ("ModelTimeoutException", Kind.Timeout),
        ("ServiceUnavailableException", Kind.Unavailable),
        ("ModelNotReadyException", Kind.Unavailable),
        ("InternalServerException", Kind.ServerError),
        ("ModelErrorException", Kind.ServerError),
        ("ModelStreamErrorException", Kind.ServerError),
    }.ToFrozenDictionary(e => e.Name, StringComparer.OrdinalIgnoreCase);

    /// <summary>Classifies a non-success response of <c>/converse</c> or <c>/converse-stream</c>.</summary>
    public static UpstreamFailure FromResponse(HttpResponseMessage response, ReadOnlySpan<byte> body, string deploymentId, string clientModel)
    {
        var parsed = TryParseBody(body);
        var type = ErrorTypeFromHeader(response) ?? NormalizeType(parsed?.Type);
        var message = parsed?.Message ?? parsed?.MessageCapitalized;
        var status = (int)response.StatusCode;
        return Classify(type, message, status, deploymentId, clientModel, UpstreamFailure.ParseRetryAfter(response.Headers)) with
        {
            UpstreamRequestId = response.Headers.TryGetValues("x-amzn-RequestId", out var ids) ? ids.FirstOrDefault() : null,
        };
    }

    /// <summary>The error event for an <c>exception</c> message in a ConverseStream body.</summary>
    public static OpenAiError FromStreamException(string? exceptionType, ReadOnlySpan<byte> payload, string deploymentId, string clientModel)
    {
        var parsed = TryParseBody(payload);
        return Classify(exceptionType, parsed?.Message ?? parsed?.MessageCapitalized, status: null, deploymentId, clientModel, retryAfter: null).Error;
    }

    private static UpstreamFailure Classify(string? type, string? message, int? status, string deploymentId, string clientModel, TimeSpan? retryAfter)
    {
        if (type is null || !Kinds.TryGetValue(type, out var known))
        {
            // Unknown or missing type: fall back on the HTTP status like any provider.
            var statusCode = status ?? StatusCodes.Status502BadGateway;
            var upstreamError = statusCode is >= 400 and < 500 && message is not null
                ? new OpenAiError(message, GatewayErrors.InvalidRequest, null, null)
                : null;
            var fallback = UpstreamFailure.FromStatus(statusCode, deploymentId, upstreamError, retryAfter);
            return status is null && type is not null
                ? fallback with { Error = fallback.Error with { Message = $"Deployment '{deploymentId}' failed ({type})." } }
                : fallback;
        }

        var reason = "bedrock_" + known.Name;
        switch (known.Kind)
        {
            case Kind.Validation:
                return UpstreamFailure.FromStatus(StatusCodes.Status400BadRequest, deploymentId,
                    new OpenAiError(message ?? $"Deployment '{deploymentId}' rejected the request as invalid.", GatewayErrors.InvalidRequest, null, null),
                    retryAfter) with { Reason = reason };
            case Kind.NotFound:
                // The configured model id (or inference profile) does not exist in the deployment's account and region.
                return new UpstreamFailure(StatusCodes.Status404NotFound, new OpenAiError(
                    $"The model '{clientModel}' is not available from its provider (deployment '{deploymentId}' reports it does not exist).",
                    GatewayErrors.InvalidRequest, "model", "model_not_found"), IsRetryable: false, reason) { UpstreamStatus = StatusCodes.Status404NotFound };
            case Kind.Throttled:
                return UpstreamFailure.FromStatus(StatusCodes.Status429TooManyRequests, deploymentId, null, retryAfter) with { Reason = reason };
            case Kind.Credentials:
                return UpstreamFailure.FromStatus(StatusCodes.Status403Forbidden, deploymentId, null, retryAfter) with { Reason = reason };
            case Kind.Timeout:
                return UpstreamFailure.FromStatus(StatusCodes.Status504GatewayTimeout, deploymentId, null, retryAfter) with { Reason = reason };
            case Kind.Unavailable:
                return UpstreamFailure.FromStatus(StatusCodes.Status503ServiceUnavailable, deploymentId, null, retryAfter) with { Reason = reason };
            default:
                var failure = UpstreamFailure.FromStatus(StatusCodes.Status500InternalServerError, deploymentId, null, retryAfter);
                return failure with
                {
                    Error = failure.Error with { Message = $"Deployment '{deploymentId}' returned an error ({known.Name})." },
                    Reason = reason,
                };
        }
    }

    /// <summary><c>x-amzn-ErrorType: ValidationException:http://internal.amazon.com/coral/...</c> names the type before the first colon.</summary>
    private static string? ErrorTypeFromHeader(HttpResponseMessage response)
    {
        if (!response.Headers.TryGetValues("x-amzn-ErrorType", out var values))
        {
            return null;
        }
        var value = values.FirstOrDefault();
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }
        var colon = value.IndexOf(':');
        return NormalizeType(colon < 0 ? value : value[..colon]);
    }

    /// <summary><c>__type</c> may be qualified: <c>com.amazon.coral.validate#ValidationException</c>.</summary>
    private static string? NormalizeType(string? type)
    {
        if (string.IsNullOrWhiteSpace(type))
        {
            return null;
        }
        var hash = type.LastIndexOf('#');
        return (hash < 0 ? type : type[(hash + 1)..]).Trim();
    }

    private static BedrockErrorBody? TryParseBody(ReadOnlySpan<byte> body)
    {
        if (body.IsEmpty)
        {
            return null;
        }
        try
        {
            return JsonSerializer.Deserialize(body, BedrockJsonContext.Default.BedrockErrorBody);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
