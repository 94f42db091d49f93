using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace LlmProxy.Simulator.Http;

/// <summary>
/// The request target exactly as it arrived on the wire. The server's <see cref="HttpRequest.Path"/> is decoded
/// (all but <c>%2F</c>), which loses what a client encoded; SigV4 signs the encoded form, and tests want to see
/// how a gateway encoded a path (a Bedrock model id that is an ARN, for instance).
/// </summary>
internal static class RawTarget
{
    /// <summary>The path as sent, still percent-encoded, without the query string.</summary>
    public static string Path(HttpContext context) => Split(context).Path;

    /// <summary>The query string as sent, without its leading '?'; empty when there is none.</summary>
    public static string Query(HttpContext context) => Split(context).Query;

    private static (string Path, string Query) Split(HttpContext context)
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
