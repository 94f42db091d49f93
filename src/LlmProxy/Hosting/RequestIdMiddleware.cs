using LlmProxy.Forwarding;

namespace LlmProxy.Hosting;

/// <summary>
/// Gives every request an id: the client's <c>x-request-id</c> when it is a sane token, a new one otherwise.
/// It is returned on every response, becomes <see cref="HttpContext.TraceIdentifier"/>, and scopes every log line
/// as <c>GatewayRequestId</c> (ASP.NET Core's own scope already uses the key <c>RequestId</c>).
/// </summary>
internal sealed class RequestIdMiddleware(RequestDelegate next, ILogger<RequestIdMiddleware> logger)
{
    private const int MaxLength = 128;

    public Task InvokeAsync(HttpContext context)
    {
        var id = context.Request.Headers[GatewayHeaders.RequestId].ToString();
        if (!IsAcceptable(id))
        {
            id = "req_" + Guid.NewGuid().ToString("N");
        }
        context.TraceIdentifier = id;
        context.Response.OnStarting(static state =>
        {
            var ctx = (HttpContext)state;
            ctx.Response.Headers[GatewayHeaders.RequestId] = ctx.TraceIdentifier;
            return Task.CompletedTask;
        }, context);

        return InvokeScopedAsync(context);
    }

    private async Task InvokeScopedAsync(HttpContext context)
    {
        using (logger.BeginScope(new RequestIdScope(context.TraceIdentifier)))
        {
            await next(context);
        }
    }

    /// <summary>Ids are echoed into headers and logs, so only a conservative token alphabet is taken from clients.</summary>
    internal static bool IsAcceptable(string id) =>
        id.Length is > 0 and <= MaxLength && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':');

    private sealed class RequestIdScope(string requestId) : IReadOnlyList<KeyValuePair<string, object>>
    {
        public KeyValuePair<string, object> this[int index] => index == 0 ? new("GatewayRequestId", requestId) : throw new ArgumentOutOfRangeException(nameof(index));
        public int Count => 1;
        public IEnumerator<KeyValuePair<string, object>> GetEnumerator() { yield return this[0]; }
        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
        public override string ToString() => "GatewayRequestId:" + requestId;
    }
}
