using System.Text;
using LlmProxy.Simulator.Control;
using LlmProxy.Simulator.Http;
using Microsoft.AspNetCore.Http;

namespace LlmProxy.Simulator.Recording;

/// <summary>
/// Records every request except control ones (<c>/_sim/</c>) before anything else runs, so that what
/// reached the upstream is visible even when authentication or a fault rejects it.
/// </summary>
internal sealed class RecordingMiddleware(RequestDelegate next, SimulatorRecorder recorder, TimeProvider time)
{
    public async Task InvokeAsync(HttpContext context)
    {
        if (context.Request.Path.StartsWithSegments(ControlPaths.Root))
        {
            await next(context);
            return;
        }

        byte[] body;
        try
        {
            using var buffer = new MemoryStream();
            await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
            body = buffer.ToArray();
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            return;
        }

        context.Features.Set(new RequestBodyFeature(body));

        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, values) in context.Request.Headers)
        {
            headers[name] = values.ToString();
        }

        recorder.Record(new RecordedRequest(
            context.Request.Method,
            RawTarget.Path(context),
            context.Request.QueryString.Value ?? string.Empty,
            headers,
            Encoding.UTF8.GetString(body),
            time.GetUtcNow()));

        await next(context);
    }
}
