using System.Text.Json.Serialization;

namespace LlmProxy.OpenAi;

/// <summary>OpenAI's error object: <c>{"error":{"message","type","param","code"}}</c>.</summary>
public sealed record OpenAiError(
    [property: JsonPropertyName("message")] string Message,
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("param")] string? Param,
    [property: JsonPropertyName("code")] string? Code);

public sealed record OpenAiErrorEnvelope([property: JsonPropertyName("error")] OpenAiError Error);

/// <summary>An error together with the HTTP status it is returned with.</summary>
public sealed record GatewayError(int StatusCode, OpenAiError Error)
{
    /// <summary>Seconds the client should wait before retrying, sent as <c>Retry-After</c>.</summary>
    public int? RetryAfterSeconds { get; init; }
}

/// <summary>
/// The errors the gateway itself produces. Types and codes follow what OpenAI returns for the same
/// situation so that SDKs map them to their usual exception types.
/// </summary>
public static class GatewayErrors
{
    public const string InvalidRequest = "invalid_request_error";
    public const string ServerError = "server_error";

    public static GatewayError BadRequest(string message, string? param, string? code = null) =>
        new(StatusCodes.Status400BadRequest, new OpenAiError(message, InvalidRequest, param, code));

    public static GatewayError InvalidJson(string detail) =>
        BadRequest($"We could not parse the JSON body of your request. ({detail})", param: null, code: "invalid_json");

    public static GatewayError MissingParameter(string param) =>
        BadRequest($"Missing required parameter: '{param}'.", param, "missing_required_parameter");

    public static GatewayError InvalidParameter(string param, string message) =>
        BadRequest(message, param, "invalid_value");

    public static GatewayError InvalidApiKey(bool missing) => new(StatusCodes.Status401Unauthorized, new OpenAiError(
        missing
            ? "You didn't provide an API key. Send it in the Authorization header as 'Bearer <key>'."
            : "Incorrect API key provided.",
        InvalidRequest, null, "invalid_api_key"));

    /// <summary>
    /// Unknown models and models the tenant may not use get the same 404, as OpenAI does, so that a tenant
    /// cannot discover which models other tenants are given.
    /// </summary>
    public static GatewayError ModelNotFound(string model) => new(StatusCodes.Status404NotFound, new OpenAiError(
        $"The model '{model}' does not exist or you do not have access to it.", InvalidRequest, "model", "model_not_found"));

    public static GatewayError RequestTooLarge(long limit) => new(StatusCodes.Status413RequestEntityTooLarge, new OpenAiError(
        $"The request body is larger than this gateway accepts ({limit} bytes).", InvalidRequest, null, "request_too_large"));

    public static GatewayError UnsupportedMediaType(string message) => new(StatusCodes.Status415UnsupportedMediaType, new OpenAiError(
        message, InvalidRequest, null, "unsupported_media_type"));

    public static GatewayError UnknownPath(string method, string path) => new(StatusCodes.Status404NotFound, new OpenAiError(
        $"Invalid URL ({method} {path}).", InvalidRequest, null, "unknown_url"));

    public static GatewayError MethodNotAllowed(string method, string path) => new(StatusCodes.Status405MethodNotAllowed, new OpenAiError(
        $"Method {method} is not allowed for {path}.", InvalidRequest, null, "method_not_allowed"));

    public static GatewayError Internal() => new(StatusCodes.Status500InternalServerError, new OpenAiError(
        "The gateway had an internal error while processing your request. Quote the x-request-id header when reporting it.",
        ServerError, null, "internal_error"));
}
