using System.Net.Sockets;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;

namespace LlmProxy.Simulator.Faults;

/// <summary>Ends a connection without a proper HTTP ending, the way a crashed upstream or a broken network would.</summary>
internal static class ConnectionAbort
{
    /// <summary>
    /// Resets the connection: zero linger makes the close send a TCP RST instead of a FIN. Only used before any
    /// response byte is sent, because an RST may also discard bytes the client has not read yet.
    /// </summary>
    public static void Reset(HttpContext context)
    {
        if (context.Features.Get<IConnectionSocketFeature>()?.Socket is { } socket)
        {
            try
            {
                socket.LingerState = new LingerOption(enable: true, seconds: 0);
            }
            catch (SocketException)
            {
                // The socket is already gone; aborting below still ends the request.
            }
            catch (ObjectDisposedException)
            {
                // Same: nothing left to reset.
            }
        }

        context.Abort();
    }

    /// <summary>Drops the connection at once; bytes not yet handed to the socket may be lost.</summary>
    public static void Drop(HttpContext context) => context.Abort();

    /// <summary>How long to wait for the transport to send what was flushed before dropping the connection anyway.</summary>
    private static readonly TimeSpan s_drainTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Drops the connection only after every byte already flushed has reached the socket, so the client reliably
    /// receives the events sent before the fault and then sees the stream end without its final chunk.
    /// <see cref="HttpContext.Abort"/> alone is not enough: Kestrel closes the socket at once and discards output
    /// its send loop has not picked up yet. Completing the transport's output instead lets that loop send the rest
    /// and then close gracefully (FIN); the request is aborted once the connection is closed.
    /// </summary>
    public static async Task DropAfterSentAsync(HttpContext context)
    {
        var transport = context.Features.Get<IConnectionTransportFeature>()?.Transport;
        if (transport is null)
        {
            context.Abort();
            return;
        }

        await transport.Output.CompleteAsync();
        using var drained = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        drained.CancelAfter(s_drainTimeout);
        try
        {
            await Task.Delay(Timeout.InfiniteTimeSpan, drained.Token);
        }
        catch (OperationCanceledException)
        {
            // Either the connection closed (the normal case) or the drain timed out: abort in both cases.
        }

        context.Abort();
    }
}
