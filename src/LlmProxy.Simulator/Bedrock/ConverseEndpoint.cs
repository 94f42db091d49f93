using System.Buffers;
using System.Diagnostics;
using LlmProxy.Simulator.Faults;
using LlmProxy.Simulator.Http;
using LlmProxy.Simulator.Recording;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LlmProxy.Simulator.Bedrock;

/// <summary>
/// <c>POST /model/{modelId}/converse</c> and <c>/converse-stream</c>: validates like Bedrock, then either injects the armed
/// fault, in Bedrock's shapes, or answers with the deterministic simulated reply, as one JSON body or as an
/// <c>application/vnd.amazon.eventstream</c> of binary event messages. The signature was checked before (<see cref="SigV4Middleware"/>).
/// </summary>
internal sealed class ConverseEndpoint(
    SimulatorOptions options,
    SimulatorFaults faults,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    ILogger<ConverseEndpoint> logger)
{
    internal const string EventStreamContentType = "application/vnd.amazon.eventstream";

    public async Task HandleAsync(HttpContext context)
    {
        if (!BedrockPaths.TryParse(RawTarget.Path(context), out var modelId, out var operation))
        {
            await BedrockError.UnknownOperation().WriteResponseAsync(context.Response);
            return;
        }

        var started = Stopwatch.GetTimestamp();
        var body = context.Features.Get<RequestBodyFeature>()?.Body ?? [];
        if (!ConverseRequestParser.TryParse(modelId, body, out var request, out var error))
        {
            BedrockLog.Rejected(logger, operation, error.Type, error.Message);
            await error.WriteResponseAsync(context.Response);
            return;
        }

        // The request ends when the client gives up or when the simulator stops, so a hung or slow
        // answer never holds up a test's shutdown.
        using var ended = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
        var streaming = operation == BedrockOperation.ConverseStream;
        var fault = faults.TakeFor(streaming);
        if (fault is not null)
        {
            BedrockLog.FaultInjected(logger, fault, operation, modelId);
        }

        try
        {
            if (fault is { Kind: SimulatorFaultKind.Hang })
            {
                await Task.Delay(Timeout.InfiniteTimeSpan, time, ended.Token);
                return;
            }

            if (fault is { IsMidStream: false })
            {
                await DelayAsync(options.Latency, ended.Token);
                await InjectBeforeResponseAsync(context, fault);
                return;
            }

            var reply = ConverseReplies.Generate(request);
            if (streaming)
            {
                await StreamAsync(context, reply, fault, started, ended.Token);
            }
            else
            {
                await DelayAsync(options.Latency, ended.Token);
                await WriteConverseAsync(context, reply, Stopwatch.GetElapsedTime(started), ended.Token);
            }

            BedrockLog.Answered(logger, operation, modelId, reply.StopReason, reply.InputTokens, reply.OutputTokens);
        }
        catch (OperationCanceledException)
        {
            BedrockLog.Abandoned(logger, operation, modelId);
            if (lifetime.ApplicationStopping.IsCancellationRequested)
            {
                // A client still waiting when the simulator stops sees the connection go, as with a real upstream going down.
                ConnectionAbort.Drop(context);
            }
        }
    }

    private static Task InjectBeforeResponseAsync(HttpContext context, SimulatorFault fault)
    {
        switch (fault.Kind)
        {
            case SimulatorFaultKind.Reset:
                ConnectionAbort.Reset(context);
                return Task.CompletedTask;
            case SimulatorFaultKind.Status:
                return BedrockError.ForStatus(fault.StatusCode).WriteResponseAsync(context.Response, fault.RetryAfterSeconds);
            default:
                throw new InvalidOperationException($"{fault.Kind} is not injected before the response.");
        }
    }

    private static async Task WriteConverseAsync(HttpContext context, ConverseReply reply, TimeSpan latency, CancellationToken cancellationToken)
    {
        var json = ConverseJson.Write(reply, (long)latency.TotalMilliseconds);
        BedrockHeaders.Apply(context.Response);
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/json";
        context.Response.ContentLength = json.Length;
        await context.Response.Body.WriteAsync(json, cancellationToken);
    }

    /// <summary>
    /// Sends the events as binary event-stream messages, each flushed on its own. A mid-stream fault replaces the event at
    /// position <c>AfterChunks</c> (counting every event, <c>messageStart</c> and <c>metadata</c> included), or comes after
    /// <c>metadata</c> when the stream has fewer events.
    /// </summary>
    private async Task StreamAsync(HttpContext context, ConverseReply reply, SimulatorFault? fault, long started, CancellationToken cancellationToken)
    {
        var response = context.Response;
        BedrockHeaders.Apply(response);
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = EventStreamContentType;
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        await response.StartAsync(cancellationToken);
        await response.BodyWriter.FlushAsync(cancellationToken);

        await DelayAsync(options.Latency, cancellationToken);

        var events = ConverseStreamEvents.Build(reply);
        var total = events.Count + 1;
        for (var position = 0; position <= total; position++)
        {
            if (position > 0 && position < total)
            {
                await DelayAsync(options.ChunkDelay, cancellationToken);
            }

            if (fault is not null && position == Math.Min(fault.AfterChunks, total))
            {
                await InjectMidStreamAsync(context, fault, cancellationToken);
                return;
            }

            if (position == total)
            {
                return;
            }

            var streamEvent = position < events.Count
                ? events[position]
                : ConverseStreamEvents.Metadata(reply, (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds, position);
            await WriteAndFlushAsync(response, ConverseStreamEvents.Encode(streamEvent), cancellationToken);
        }
    }

    private static async Task InjectMidStreamAsync(HttpContext context, SimulatorFault fault, CancellationToken cancellationToken)
    {
        if (fault.Kind == SimulatorFaultKind.MidStreamAbort)
        {
            await ConnectionAbort.DropAfterSentAsync(context);
            return;
        }

        // Bedrock reports a failure after the stream started as an exception message, then ends the stream.
        var (exceptionType, error) = BedrockError.ForMidStream(fault.StatusCode);
        await WriteAndFlushAsync(context.Response, ConverseStreamEvents.EncodeException(exceptionType, error), cancellationToken);
    }

    private static async Task WriteAndFlushAsync(HttpResponse response, byte[] message, CancellationToken cancellationToken)
    {
        response.BodyWriter.Write(message);
        var result = await response.BodyWriter.FlushAsync(cancellationToken);
        if (result.IsCanceled || result.IsCompleted)
        {
            // The client is gone: stop producing as a real upstream notices a closed socket.
            throw new OperationCanceledException(cancellationToken);
        }
    }

    private Task DelayAsync(TimeSpan delay, CancellationToken cancellationToken) =>
        delay <= TimeSpan.Zero ? Task.CompletedTask : Task.Delay(delay, time, cancellationToken);
}
