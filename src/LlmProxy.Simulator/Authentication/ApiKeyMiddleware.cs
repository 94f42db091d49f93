using LlmProxy.Simulator.OpenAi;
using Microsoft.AspNetCore.Http;

namespace LlmProxy.Simulator.Authentication;

/// <summary>
/// Rejects OpenAI API requests (<c>/v1/</c>) whose <c>Authorization: Bearer</c> key is not <see cref="SimulatorOptions.ExpectedApiKey"/>
/// with OpenAI's 401, so tests can check that a gateway swaps the client's key for the upstream's.
/// Registered only when a key is expected; the control surface and the Bedrock endpoints (signed with SigV4) are never checked.
/// </summary>
internal sealed class ApiKeyMiddleware(RequestDelegate next, string expectedApiKey)
{
    private const string BearerPrefix = "Bearer ";

    public Task InvokeAsync(HttpContext context)
    {
        if (!context.Request.Path.StartsWithSegments(OpenAiPaths.Root))
        {
            return next(context);
        }

        var authorization = context.Request.Headers.Authorization.ToString();
        if (!authorization.StartsWith(BearerPrefix, StringComparison.OrdinalIgnoreCase))
        {
            return MissingKey().WriteResponseAsync(context.Response);
        }

        var presented = authorization[BearerPrefix.Length..].Trim();
        if (!string.Equals(presented, expectedApiKey, StringComparison.Ordinal))
        {
            return IncorrectKey(presented).WriteResponseAsync(context.Response);
        }

        return next(context);
    }

    private static OpenAiError MissingKey() => new(
        StatusCodes.Status401Unauthorized,
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        OpenAiError.InvalidRequestType,
        Code: "invalid_api_key");

    private static OpenAiError IncorrectKey(string presented) => new(
        StatusCodes.Status401Unauthorized,
        $"Incorrect API key provided: {Mask(presented)}. You can find your API key at https://platform.openai.com/account/api-keys.",
        OpenAiError.InvalidRequestType,
        Code: "invalid_api_key");

    /// <summary>Shows only the ends of the key, as OpenAI does, so logs of a failing test do not leak it.</summary>
    internal static string Mask(string key) =>
        key.Length <= 8 ? new string('*', key.Length) : $"{key[..3]}{new string('*', key.Length - 7)}{key[^4..]}";
}
