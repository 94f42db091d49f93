using LlmProxy.Simulator.Http;
using LlmProxy.Simulator.Recording;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace LlmProxy.Simulator.Bedrock;

/// <summary>
/// Rejects Bedrock requests (<c>/model/...</c>) that are not SigV4-signed by one of <see cref="SimulatorOptions.BedrockCredentials"/>,
/// before any validation, as AWS authenticates first. Registered only when <see cref="SimulatorOptions.BedrockRequireSignature"/> is set.
/// </summary>
internal sealed class SigV4Middleware(RequestDelegate next, SigV4Verifier verifier, ILogger<SigV4Middleware> logger)
{
    public Task InvokeAsync(HttpContext context)
    {
        if (!context.Request.Path.StartsWithSegments(BedrockPaths.Root))
        {
            return next(context);
        }

        var error = verifier.Verify(FromContext(context));
        if (error is null)
        {
            return next(context);
        }

        // The first line only: a mismatch goes on with the whole canonical request, which the client gets in the response.
        BedrockLog.SignatureRejected(logger, error.Type, error.Message.Split('\n')[0]);
        return error.WriteResponseAsync(context.Response);
    }

    internal static SigV4Request FromContext(HttpContext context)
    {
        var headers = new List<KeyValuePair<string, string>>();
        foreach (var (name, values) in context.Request.Headers)
        {
            foreach (var value in values)
            {
                headers.Add(new(name, value ?? string.Empty));
            }
        }

        return new SigV4Request(
            context.Request.Method,
            RawTarget.Path(context),
            RawTarget.Query(context),
            headers,
            context.Features.Get<RequestBodyFeature>()?.Body ?? []);
    }
}
