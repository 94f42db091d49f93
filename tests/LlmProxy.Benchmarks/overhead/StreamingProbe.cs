using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;

namespace LlmProxy.Benchmarks.Overhead;

/// <summary>What the streaming client measured against one target in one run.</summary>
internal sealed class StreamResult
{
    public LatencyHistogram TimeToFirstChunk { get; } = new();
    public LatencyHistogram ChunkGaps { get; } = new();
    public long Streams;
    public long Errors;
    public TimeSpan Duration;
}

/// <summary>
/// A small streaming client (wrk cannot see inside a response): each connection sends <c>"stream": true</c>
/// requests back to back and timestamps every server-sent event as it completes (<c>\n\n</c> read). Time to first
/// chunk is from just before the request is sent to the first complete event; chunk gaps are the times between
/// successive events of one response. Events that arrive in one read share a timestamp (a gap of 0), as they would
/// for any client.
/// </summary>
internal static class StreamingProbe
{
    public static HttpClient CreateClient(int connections) => new(new SocketsHttpHandler
    {
        UseProxy = false,
        MaxConnectionsPerServer = connections,
        PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
    })
    {
        Timeout = Timeout.InfiniteTimeSpan,
    };

    public static async Task<StreamResult> MeasureAsync(HttpClient client, string url, string model, IReadOnlyList<string> headers, int connections,
        TimeSpan duration, CancellationToken cancellationToken)
    {
        var result = new StreamResult();
        var nonce = Environment.TickCount64;
        var started = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, connections).Select(worker => Task.Run(async () =>
        {
            var ttft = new List<TimeSpan>();
            var gaps = new List<TimeSpan>();
            long streams = 0, errors = 0;
            for (var n = 0; started.Elapsed < duration && !cancellationToken.IsCancellationRequested; n++)
            {
                var events = new List<long>(32);
                var sentAt = Stopwatch.GetTimestamp();
                var ok = await RunOneAsync(client, url, Body(model, $"streaming benchmark prompt {nonce} {worker} {n}"), headers, events, cancellationToken);
                if (!ok || events.Count == 0)
                {
                    errors++;
                    continue;
                }
                streams++;
                ttft.Add(Stopwatch.GetElapsedTime(sentAt, events[0]));
                for (var i = 1; i < events.Count; i++)
                {
                    gaps.Add(Stopwatch.GetElapsedTime(events[i - 1], events[i]));
                }
            }
            lock (result)
            {
                ttft.ForEach(result.TimeToFirstChunk.Add);
                gaps.ForEach(result.ChunkGaps.Add);
                result.Streams += streams;
                result.Errors += errors;
            }
        }, CancellationToken.None)).ToArray();
        await Task.WhenAll(workers);
        result.Duration = started.Elapsed;
        return result;
    }

    public static byte[] Body(string model, string prompt) =>
        Encoding.UTF8.GetBytes($$"""{"model":"{{model}}","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"{{prompt}}"}],"max_tokens":64}""");

    public static HttpRequestMessage Request(string url, byte[] body, IReadOnlyList<string> headers)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        foreach (var header in headers)
        {
            var colon = header.IndexOf(':', StringComparison.Ordinal);
            request.Headers.TryAddWithoutValidation(header[..colon].Trim(), header[(colon + 1)..].Trim());
        }
        return request;
    }

    /// <summary>Sends one streamed request and records when each event completed; true when it ended with <c>[DONE]</c>.</summary>
    private static async Task<bool> RunOneAsync(HttpClient client, string url, byte[] body, IReadOnlyList<string> headers, List<long> events,
        CancellationToken cancellationToken)
    {
        try
        {
            using var request = Request(url, body, headers);
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
            var scanner = new EventScanner();
            var buffer = new byte[8192];
            int read;
            while ((read = await stream.ReadAsync(buffer, cancellationToken)) > 0)
            {
                var now = Stopwatch.GetTimestamp();
                var completed = scanner.Scan(buffer.AsSpan(0, read));
                for (var i = 0; i < completed; i++)
                {
                    events.Add(now);
                }
            }
            return response.IsSuccessStatusCode && scanner.SawDone;
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return false;
        }
    }

    /// <summary>Counts server-sent events (blank-line terminated) across reads, and notices <c>data: [DONE]</c>.</summary>
    internal sealed class EventScanner
    {
        private static readonly byte[] Done = "data: [DONE]"u8.ToArray();
        private byte _previous;
        private readonly byte[] _tail = new byte[Done.Length];
        private int _tailLength;

        public bool SawDone { get; private set; }

        public int Scan(ReadOnlySpan<byte> bytes)
        {
            var completed = 0;
            foreach (var b in bytes)
            {
                if (b == (byte)'\n' && _previous == (byte)'\n')
                {
                    completed++;
                }
                if (b != (byte)'\r')
                {
                    _previous = b;
                }
                if (!SawDone)
                {
                    // A sliding window of the last bytes, so "data: [DONE]" is seen even when split across reads.
                    if (_tailLength == _tail.Length)
                    {
                        Array.Copy(_tail, 1, _tail, 0, _tail.Length - 1);
                        _tailLength--;
                    }
                    _tail[_tailLength++] = b;
                    SawDone = _tailLength == _tail.Length && _tail.AsSpan().SequenceEqual(Done);
                }
            }
            return completed;
        }
    }

    /// <summary>
    /// Opens <paramref name="count"/> streams and keeps reading them (a slow upstream keeps them open) until
    /// <paramref name="release"/> is cancelled. Returns how many got their first event, once all did or the timeout passed.
    /// </summary>
    public static async Task<(int Opened, Task Finished)> HoldAsync(string url, string model, IReadOnlyList<string> headers, int count,
        TimeSpan timeout, CancellationToken release)
    {
        var client = CreateClient(int.MaxValue);
        var firstEvents = 0;
        var allOpen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var nonce = Environment.TickCount64;
        var prompt = string.Join(' ', Enumerable.Repeat("a long prompt keeps the slow stream open", 6));
        var streams = new List<Task>(count);
        for (var i = 0; i < count; i++)
        {
            var index = i;
            streams.Add(Task.Run(async () =>
            {
                try
                {
                    using var request = Request(url, Body(model, $"{prompt} {nonce} {index}"), headers);
                    using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, release);
                    await using var stream = await response.Content.ReadAsStreamAsync(release);
                    var scanner = new EventScanner();
                    var buffer = new byte[1024];
                    var counted = false;
                    int read;
                    while ((read = await stream.ReadAsync(buffer, release)) > 0)
                    {
                        if (!counted && scanner.Scan(buffer.AsSpan(0, read)) > 0)
                        {
                            counted = true;
                            if (Interlocked.Increment(ref firstEvents) == count)
                            {
                                allOpen.TrySetResult();
                            }
                        }
                    }
                }
                catch (Exception ex) when (ex is OperationCanceledException or HttpRequestException or IOException)
                {
                }
            }, CancellationToken.None));
            if (i % 100 == 99)
            {
                // Kestrel's accept backlog is finite: open in batches rather than as one burst of connects.
                await Task.Delay(50, CancellationToken.None);
            }
        }
        await Task.WhenAny(allOpen.Task, Task.Delay(timeout, CancellationToken.None));
        var finished = Task.WhenAll(streams).ContinueWith(_ => client.Dispose(), TaskScheduler.Default);
        return (Volatile.Read(ref firstEvents), finished);
    }
}
