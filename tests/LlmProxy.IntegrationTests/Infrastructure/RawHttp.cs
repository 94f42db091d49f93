using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace LlmProxy.IntegrationTests.Infrastructure;

/// <summary>
/// HTTP/1.1 written by hand on a TCP socket: for requests no HTTP client would send (a header line without a colon,
/// a broken chunk), and to see exactly what the server answered, body bytes included.
/// </summary>
internal static class RawHttp
{
    public sealed record Response(int Status, IReadOnlyDictionary<string, string> Headers, string Body)
    {
        public string? Header(string name) => Headers.TryGetValue(name, out var value) ? value : null;

        /// <summary>The <c>error</c> object of an OpenAI-shaped body; fails the test when the body is not one.</summary>
        public JsonElement Error()
        {
            Assert.StartsWith("application/json", Header("content-type") ?? "(none)", StringComparison.Ordinal);
            var error = JsonDocument.Parse(Body).RootElement.GetProperty("error");
            foreach (var field in new[] { "message", "type", "param", "code" })
            {
                Assert.True(error.TryGetProperty(field, out _), $"the error has no '{field}': {Body}");
            }
            return error;
        }
    }

    /// <summary>Sends <paramref name="request"/> as it is, then reads one response (to its Content-Length or the connection's end).</summary>
    public static Task<Response> SendAsync(Uri server, string request) => SendAsync(server, Encoding.Latin1.GetBytes(request));

    public static async Task<Response> SendAsync(Uri server, byte[] request, Func<NetworkStream, Task>? thenSend = null)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var client = new TcpClient();
        await client.ConnectAsync(server.Host, server.Port, timeout.Token);
        var stream = client.GetStream();
        try
        {
            await stream.WriteAsync(request, timeout.Token);
            if (thenSend is not null)
            {
                await thenSend(stream);
            }
        }
        catch (IOException)
        {
            // The server may answer and close before it has read everything: its answer is still there to read.
        }
        return await ReadResponseAsync(stream, timeout.Token);
    }

    private static async Task<Response> ReadResponseAsync(NetworkStream stream, CancellationToken cancellationToken)
    {
        var received = new MemoryStream();
        var buffer = new byte[16 * 1024];
        int headerEnd;
        while ((headerEnd = IndexOfHeaderEnd(received)) < 0)
        {
            var read = await stream.ReadAsync(buffer, cancellationToken);
            Assert.True(read > 0, "the connection closed before a complete response head: " + Encoding.Latin1.GetString(received.ToArray()));
            received.Write(buffer, 0, read);
        }
        var head = Encoding.Latin1.GetString(received.GetBuffer(), 0, headerEnd).Split("\r\n");
        var status = int.Parse(head[0].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        var headers = head.Skip(1).Select(l => l.Split(':', 2)).ToDictionary(p => p[0].Trim().ToLowerInvariant(), p => p[1].Trim());
        var body = new MemoryStream();
        body.Write(received.GetBuffer(), headerEnd + 4, (int)received.Length - headerEnd - 4);
        var length = headers.TryGetValue("content-length", out var declared) ? long.Parse(declared, System.Globalization.CultureInfo.InvariantCulture) : long.MaxValue;
        while (body.Length < length)
        {
            int read;
            try
            {
                read = await stream.ReadAsync(buffer, cancellationToken);
            }
            catch (IOException) when (length == long.MaxValue)
            {
                break;
            }
            if (read == 0)
            {
                break;
            }
            body.Write(buffer, 0, read);
        }
        return new Response(status, headers, Encoding.UTF8.GetString(body.ToArray()));
    }

    private static int IndexOfHeaderEnd(MemoryStream received)
    {
        var bytes = received.GetBuffer().AsSpan(0, (int)received.Length);
        return bytes.IndexOf("\r\n\r\n"u8);
    }
}
