using System.Buffers;
using System.Globalization;
using System.Text.Json;
using LlmProxy.Simulator.OpenAi;
using Microsoft.AspNetCore.Http;

namespace LlmProxy.Simulator.Bedrock;

/// <summary>
/// An error in Bedrock Runtime's REST-JSON shape: the status of the error's <c>httpError</c> trait, the
/// <c>x-amzn-ErrorType: &lt;Name&gt;:&lt;namespace&gt;</c> header SDKs read the error name from, and <c>{"message":"..."}</c>.
/// Errors of the service's own model use Bedrock's namespace; those raised by the AWS front door
/// (authentication, unknown operation) use the generic Coral service namespace, as the real service does.
/// </summary>
internal sealed record BedrockError(int StatusCode, string Type, string Message, string Namespace = BedrockError.BedrockNamespace)
{
    internal const string BedrockNamespace = "http://internal.amazon.com/coral/com.amazon.bedrock/";
    internal const string CoralServiceNamespace = "http://internal.amazon.com/coral/com.amazon.coral.service/";

    internal const string ErrorTypeHeader = "x-amzn-ErrorType";

    internal const string SignatureMismatchMessage =
        "The request signature we calculated does not match the signature you provided. "
        + "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

    public static BedrockError Validation(string message) => new(StatusCodes.Status400BadRequest, "ValidationException", message);

    /// <summary>A body that is not JSON of the request's shape; Coral rejects it before validation.</summary>
    public static BedrockError Serialization(string message) =>
        new(StatusCodes.Status400BadRequest, "SerializationException", message, CoralServiceNamespace);

    public static BedrockError ResourceNotFound(string message) => new(StatusCodes.Status404NotFound, "ResourceNotFoundException", message);

    public static BedrockError Throttling() =>
        new(StatusCodes.Status429TooManyRequests, "ThrottlingException", "Too many requests, please wait before trying again.");

    public static BedrockError InternalServer() =>
        new(StatusCodes.Status500InternalServerError, "InternalServerException", "The system encountered an unexpected error during processing. Try your request again.");

    public static BedrockError ServiceUnavailable() =>
        new(StatusCodes.Status503ServiceUnavailable, "ServiceUnavailableException", "Bedrock is unable to process your request.");

    public static BedrockError ModelTimeout() =>
        new(StatusCodes.Status408RequestTimeout, "ModelTimeoutException", "Model has timed out in processing the request. Try your request again.");

    public static BedrockError InvalidSignature(string message) =>
        new(StatusCodes.Status403Forbidden, "InvalidSignatureException", message, CoralServiceNamespace);

    public static BedrockError IncompleteSignature(string message) =>
        new(StatusCodes.Status403Forbidden, "IncompleteSignatureException", message, CoralServiceNamespace);

    public static BedrockError UnrecognizedClient() =>
        new(StatusCodes.Status403Forbidden, "UnrecognizedClientException", "The security token included in the request is invalid.", CoralServiceNamespace);

    public static BedrockError MissingAuthenticationToken() =>
        new(StatusCodes.Status403Forbidden, "MissingAuthenticationTokenException", "Missing Authentication Token", CoralServiceNamespace);

    public static BedrockError UnknownOperation() =>
        new(StatusCodes.Status404NotFound, "UnknownOperationException", "Unknown operation", CoralServiceNamespace);

    /// <summary>
    /// The error Bedrock answers with for a <see cref="SimulatorFaultKind.Status"/> fault: the exception of the API model
    /// that has that status (504 becomes 408 <c>ModelTimeoutException</c>, Bedrock's only timeout), else a
    /// <c>ValidationException</c> (4xx) or <c>InternalServerException</c> (5xx) with the status as asked.
    /// </summary>
    public static BedrockError ForStatus(int statusCode) => statusCode switch
    {
        400 => Validation("The request was invalid."),
        401 => UnrecognizedClient() with { StatusCode = 401 },
        403 => new(403, "AccessDeniedException", "You don't have access to the model with the specified model ID."),
        404 => ResourceNotFound("Could not resolve the foundation model from the provided model identifier."),
        408 or 504 => ModelTimeout(),
        424 => new(424, "ModelErrorException", "The model returned an error. Try your request again."),
        429 => Throttling(),
        500 => InternalServer(),
        503 => ServiceUnavailable(),
        >= 500 => InternalServer() with { StatusCode = statusCode },
        _ => Validation("The request was invalid.") with { StatusCode = statusCode },
    };

    /// <summary>
    /// The exception event a <see cref="SimulatorFaultKind.MidStreamError"/> fault sends: the member of the
    /// <c>ConverseStreamOutput</c> union for the fault's status (<see cref="SimulatorFault.MidStreamError"/>) and its message.
    /// </summary>
    public static (string ExceptionType, BedrockError Error) ForMidStream(int statusCode) => statusCode switch
    {
        429 => ("throttlingException", Throttling()),
        503 => ("serviceUnavailableException", ServiceUnavailable()),
        500 => ("internalServerException", InternalServer()),
        400 => ("validationException", Validation("The request was invalid.")),
        _ => ("modelStreamErrorException", new(424, "ModelStreamErrorException", "The model stream was interrupted by an error. Try your request again.")),
    };

    /// <summary><c>{"message":"..."}</c>, the body of every Bedrock error and the payload of an exception event.</summary>
    public byte[] ToUtf8Json()
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var writer = new Utf8JsonWriter(buffer, WireJson.WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("message", Message);
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Writes the error as the whole response, with a request id and <c>Retry-After</c> when given.</summary>
    public async Task WriteResponseAsync(HttpResponse response, int? retryAfterSeconds = null)
    {
        var body = ToUtf8Json();
        BedrockHeaders.Apply(response);
        response.StatusCode = StatusCode;
        response.Headers[ErrorTypeHeader] = $"{Type}:{Namespace}";
        response.ContentType = "application/json";
        response.ContentLength = body.Length;
        if (retryAfterSeconds is { } seconds)
        {
            response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        }

        await response.Body.WriteAsync(body, response.HttpContext.RequestAborted);
    }
}
