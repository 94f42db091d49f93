using System.Buffers;
using LlmProxy.OpenAi;
using LlmProxy.Providers;

namespace LlmProxy.Forwarding;

/// <summary>
/// The response body YARP copies to the client: reads the upstream body and returns its translation as
/// soon as each event is complete, so nothing is buffered beyond one event. Translating on the read side
/// (instead of wrapping the client's body) lets an upstream failure become a clean error event for the
/// client instead of YARP aborting the connection.
/// </summary>
internal sealed class TranslatingStream : Stream
{
    private const int ReadSize = 16 * 1024;
    private readonly Stream _upstream;
    private readonly IChatStreamTranslator _translator;
    private readonly ClientStreamSink _sink;
    private readonly string _deploymentId;
    private readonly CancellationToken _clientAborted;
    private byte[]? _readBuffer; // rented for a read, returned once its bytes are translated
    private int _pendingOffset;
    private bool _finished;

    public TranslatingStream(Stream upstream, IChatStreamTranslator translator, ClientStreamSink sink, string deploymentId, CancellationToken clientAborted)
    {
        _upstream = upstream;
        _translator = translator;
        _sink = sink;
        _deploymentId = deploymentId;
        _clientAborted = clientAborted;
    }

    /// <summary>
    /// The client's response. When set, a timeout after the first byte writes its error event here directly: YARP
    /// copies with the token that timed out, so it would fail to write the event and abort the client's connection.
    /// </summary>
    public HttpResponse? ClientResponse { get; set; }

    /// <summary>Whether any byte has been handed on to the client.</summary>
    public bool DeliveredAny { get; private set; }

    /// <summary>
    /// Set when the upstream failed before anything reached the client; the stream then ends empty so the
    /// dispatcher can still fail over to another deployment.
    /// </summary>
    public UpstreamFailure? FailureBeforeFirstByte { get; private set; }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty)
        {
            // YARP issues a zero-byte read to wait for data before it rents its 64 KB copy buffer. Answering at once made
            // every open stream hold that buffer while the upstream was silent (~100 KB per stream with ours, against
            // ~45 KB through bare YARP); waiting on the upstream the same way leaves an idle stream without either.
            // A failure here is left to the real read that follows, which reports it as usual.
            if (!_finished && _sink.Output.WrittenCount == _pendingOffset)
            {
                try
                {
                    _ = await _upstream.ReadAsync(Memory<byte>.Empty, cancellationToken);
                }
                catch (Exception ex) when (ex is IOException or HttpRequestException or OperationCanceledException)
                {
                }
            }
            return 0;
        }
        while (true)
        {
            var pending = _sink.Output.WrittenCount - _pendingOffset;
            if (pending > 0)
            {
                if (!DeliveredAny && _sink.Errored && _sink.ChunksWritten == 0)
                {
                    // The upstream's first word was an error: nothing reached the client, so fail over instead.
                    FailureBeforeFirstByte = new UpstreamFailure(StatusCodes.Status502BadGateway, _sink.ErrorSent!, IsRetryable: true, "stream_error_before_first_byte");
                    _finished = true;
                    return 0;
                }
                var count = Math.Min(pending, buffer.Length);
                _sink.Output.WrittenMemory.Slice(_pendingOffset, count).CopyTo(buffer);
                _pendingOffset += count;
                if (_pendingOffset == _sink.Output.WrittenCount)
                {
                    _sink.Output.ResetWrittenCount();
                    _pendingOffset = 0;
                }
                DeliveredAny = true;
                return count;
            }
            if (_finished)
            {
                return 0;
            }

            int read;
            try
            {
                _readBuffer ??= ArrayPool<byte>.Shared.Rent(ReadSize);
                read = await _upstream.ReadAsync(_readBuffer.AsMemory(0, ReadSize), cancellationToken);
            }
            catch (Exception ex) when (!_clientAborted.IsCancellationRequested && ex is IOException or HttpRequestException or OperationCanceledException)
            {
                var timedOut = ex is OperationCanceledException;
                if (!DeliveredAny)
                {
                    FailureBeforeFirstByte = new UpstreamFailure(
                        timedOut ? StatusCodes.Status504GatewayTimeout : StatusCodes.Status502BadGateway,
                        new OpenAiError($"Deployment '{_deploymentId}' " + (timedOut ? "timed out" : "closed the connection") + " before responding.",
                            "upstream_error", null, timedOut ? "upstream_timeout" : "upstream_error"),
                        IsRetryable: true, timedOut ? "timeout_before_first_byte" : "stream_broken_before_first_byte");
                    _finished = true;
                    return 0;
                }
                _sink.Error(new OpenAiError(
                    $"Deployment '{_deploymentId}' " + (timedOut ? "stopped sending (timed out)" : "closed the connection") + " in the middle of the response.",
                    "upstream_error", null, timedOut ? "upstream_timeout" : "upstream_stream_interrupted"));
                _sink.Done();
                _finished = true;
                if (timedOut && ClientResponse is { } client)
                {
                    // The idle (first-byte) or total timeout cancelled YARP's copy token: end the stream here, cleanly.
                    await client.Body.WriteAsync(_sink.Output.WrittenMemory[_pendingOffset..], _clientAborted);
                    await client.Body.FlushAsync(_clientAborted);
                    _sink.Output.ResetWrittenCount();
                    _pendingOffset = 0;
                    return 0;
                }
                continue;
            }

            if (read == 0)
            {
                _translator.Complete(_sink);
                _sink.Done();
                _finished = true;
                continue;
            }
            _translator.Process(_readBuffer.AsSpan(0, read), _sink);
            ArrayPool<byte>.Shared.Return(_readBuffer);
            _readBuffer = null;
            if (_sink.Errored)
            {
                _sink.Done();
                _finished = true;
            }
        }
    }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _upstream.Dispose();
            if (_readBuffer is { } rented)
            {
                _readBuffer = null;
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
        base.Dispose(disposing);
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>Hands YARP the translating stream in place of the upstream's content.</summary>
internal sealed class TranslatingContent(TranslatingStream stream, HttpContent original) : HttpContent
{
    protected override Task<Stream> CreateContentReadStreamAsync() => Task.FromResult<Stream>(stream);

    protected override Task<Stream> CreateContentReadStreamAsync(CancellationToken cancellationToken) => Task.FromResult<Stream>(stream);

    protected override Task SerializeToStreamAsync(Stream target, System.Net.TransportContext? context) => stream.CopyToAsync(target);

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            stream.Dispose();
            original.Dispose();
        }
        base.Dispose(disposing);
    }
}
