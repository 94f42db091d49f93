using System.Diagnostics.CodeAnalysis;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace LlmProxy.Simulator.Bedrock;

/// <summary>The Bedrock Runtime operations the simulator answers.</summary>
internal enum BedrockOperation
{
    /// <summary><c>POST /model/{modelId}/converse</c>.</summary>
    Converse,

    /// <summary><c>POST /model/{modelId}/converse-stream</c>.</summary>
    ConverseStream,
}

/// <summary>
/// Bedrock's paths, read from the request target exactly as it arrived. Model ids such as inference-profile ARNs
/// contain <c>:</c> and <c>/</c>, which clients percent-encode; the server's decoded path keeps <c>%2F</c> but decodes
/// the rest, so both the model id and the SigV4 canonical URI are taken from the raw target instead.
/// </summary>
internal static class BedrockPaths
{
    public const string Root = "/model";

    private const string Prefix = Root + "/";

    /// <summary>The path as sent on the wire, still percent-encoded, without the query string.</summary>
    public static string RawPath(HttpContext context) => SplitTarget(context).Path;

    /// <summary>The query string as sent on the wire, without its leading '?'; empty when there is none.</summary>
    public static string RawQuery(HttpContext context) => SplitTarget(context).Query;

    /// <summary>Reads the operation and the decoded model id from a raw path such as <c>/model/arn%3Aaws%3A...%2Fx/converse</c>.</summary>
    public static bool TryParse(string rawPath, [NotNullWhen(true)] out string? modelId, out BedrockOperation operation)
    {
        modelId = null;
        operation = default;
        var last = rawPath.LastIndexOf('/');
        if (!rawPath.StartsWith(Prefix, StringComparison.Ordinal) || last <= Prefix.Length)
        {
            return false;
        }

        switch (rawPath[(last + 1)..])
        {
            case "converse":
                operation = BedrockOperation.Converse;
                break;
            case "converse-stream":
                operation = BedrockOperation.ConverseStream;
                break;
            default:
                return false;
        }

        modelId = Uri.UnescapeDataString(rawPath[Prefix.Length..last]);
        return modelId.Length > 0;
    }

    private static (string Path, string Query) SplitTarget(HttpContext context)
    {
        var target = context.Features.Get<IHttpRequestFeature>()?.RawTarget;
        if (string.IsNullOrEmpty(target))
        {
            return (context.Request.PathBase.Add(context.Request.Path).ToUriComponent(), context.Request.QueryString.Value?.TrimStart('?') ?? string.Empty);
        }

        // An absolute-form target (sent to a proxy) carries scheme and authority before the path.
        if (!target.StartsWith('/') && Uri.TryCreate(target, UriKind.Absolute, out var absolute))
        {
            target = absolute.GetComponents(UriComponents.PathAndQuery, UriFormat.UriEscaped);
        }

        var question = target.IndexOf('?');
        return question < 0 ? (target, string.Empty) : (target[..question], target[(question + 1)..]);
    }
}
