using System.Buffers;
using LlmProxy.Simulator.Faults;
using LlmProxy.Simulator.OpenAi;
using LlmProxy.Simulator.Recording;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LlmProxy.Simulator.ChatCompletions;

/// <summary>
/// <c>POST /v1/chat/completions</c>: validates like OpenAI, then either injects the armed fault or answers
/// with the deterministic simulated reply, as one JSON body or as a server-sent event stream.
/// </summary>
internal sealed class ChatCompletionsEndpoint(
    SimulatorOptions options,
    SimulatorFaults faults,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    ILogger<ChatCompletionsEndpoint> logger)
{
    private static readonly byte[] s_dataPrefix = "data: "u8.ToArray();
    private static readonly byte[] s_eventEnd = "\n\n"u8.ToArray();
    private static readonly byte[] s_done = "data: [DONE]\n\n"u8.ToArray();

    public async Task HandleAsync(HttpContext context)
    {
        var body = context.Features.Get<RequestBodyFeature>()?.Body ?? [];
        if (!ChatCompletionRequestParser.TryParse(body, out var request, out var error))
        {
            ChatCompletionsLog.Rejected(logger, error.StatusCode, error.Param, error.Message);
            await error.WriteResponseAsync(context.Response);
            return;
        }

        // The request ends when the client gives up or when the simulator stops, so a hung or slow
        // answer never holds up a test's shutdown.
        using var ended = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
        var fault = faults.TakeFor(request.Stream);
        var mode = request.Stream ? "streamed" : "non-streamed";
        if (fault is not null)
        {
            ChatCompletionsLog.FaultInjected(logger, fault, mode, request.Model);
        }

        var identity = CompletionIdentity.Create(request.Model, time);
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

            var reply = ReplyGenerator.Generate(request);
            if (request.Stream)
            {
                await StreamAsync(context, identity, reply, request.IncludeUsage, fault, ended.Token);
            }
            else
            {
                await DelayAsync(options.Latency, ended.Token);
                await WriteCompletionAsync(context, identity, reply, ended.Token);
            }

            ChatCompletionsLog.Answered(logger, identity.Id, request.Model, mode, reply.Choices.Count, reply.PromptTokens, reply.CompletionTokens);
        }
        catch (OperationCanceledException)
        {
            ChatCompletionsLog.Abandoned(logger, identity.Id);
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
                OpenAiHeaders.Apply(context.Response);
                return OpenAiError.ForStatus(fault.StatusCode).WriteResponseAsync(context.Response, fault.RetryAfterSeconds);
            default:
                throw new InvalidOperationException($"{fault.Kind} is not injected before the response.");
        }
    }

    private static async Task WriteCompletionAsync(HttpContext context, CompletionIdentity identity, SimulatedReply reply, CancellationToken cancellationToken)
    {
        var json = ChatCompletionJson.Write(identity, reply);
        OpenAiHeaders.Apply(context.Response);
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/json";
        context.Response.ContentLength = json.Length;
        await context.Response.Body.WriteAsync(json, cancellationToken);
    }

    /// <summary>
    /// Sends the chunks as server-sent events, each flushed on its own so a client (or a gateway in between)
    /// receives it as it is produced. A mid-stream fault replaces the event at position <c>AfterChunks</c>,
    /// or <c>[DONE]</c> when the reply has fewer chunks.
    /// </summary>
    private async Task StreamAsync(HttpContext context, CompletionIdentity identity, SimulatedReply reply, bool includeUsage, SimulatorFault? fault, CancellationToken cancellationToken)
    {
        var response = context.Response;
        OpenAiHeaders.Apply(response);
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        await response.StartAsync(cancellationToken);
        await response.BodyWriter.FlushAsync(cancellationToken);

        await DelayAsync(options.Latency, cancellationToken);

        var chunks = ChatCompletionChunks.Build(identity, reply, includeUsage);
        for (var position = 0; position <= chunks.Count; position++)
        {
            if (position > 0)
            {
                await DelayAsync(options.ChunkDelay, cancellationToken);
            }

            if (fault is not null && position == Math.Min(fault.AfterChunks, chunks.Count))
            {
                await InjectMidStreamAsync(context, fault, cancellationToken);
                return;
            }

            if (position == chunks.Count)
            {
                await WriteAndFlushAsync(response, cancellationToken, s_done);
            }
            else
            {
                await WriteAndFlushAsync(response, cancellationToken, s_dataPrefix, chunks[position], s_eventEnd);
            }
        }
    }

    private static async Task InjectMidStreamAsync(HttpContext context, SimulatorFault fault, CancellationToken cancellationToken)
    {
        if (fault.Kind == SimulatorFaultKind.MidStreamAbort)
        {
            await ConnectionAbort.DropAfterSentAsync(context);
            return;
        }

        // OpenAI reports a failure after the stream started as an error object in a data event, then ends the stream.
        var error = fault.StatusCode == 0 ? OpenAiError.MidStream() : OpenAiError.ForStatus(fault.StatusCode);
        await WriteAndFlushAsync(context.Response, cancellationToken, s_dataPrefix, error.ToUtf8Json(), s_eventEnd);
    }

    private static async Task WriteAndFlushAsync(HttpResponse response, CancellationToken cancellationToken, params byte[][] parts)
    {
        foreach (var part in parts)
        {
            response.BodyWriter.Write(part);
        }

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
