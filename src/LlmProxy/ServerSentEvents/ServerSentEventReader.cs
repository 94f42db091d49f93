using System.Buffers;

namespace LlmProxy.ServerSentEvents;

/// <summary>
/// Incremental parser for <c>text/event-stream</c>: bytes in any split, complete <c>data</c> payloads out.
/// Only the <c>data</c> field is kept; comments (keep-alives) and other fields are skipped. Push-based, so a
/// translator can feed it the pieces of an upstream body as they arrive (System.Net.ServerSentEvents'
/// <c>SseParser</c> pulls from a stream and allocates an item per event, so it does not fit that shape).
/// </summary>
internal sealed class ServerSentEventReader
{
    private readonly ArrayBufferWriter<byte> _line = new(256);
    private readonly ArrayBufferWriter<byte> _data = new(1024);
    private bool _hasData;

    /// <summary>Feeds bytes; calls <paramref name="onEvent"/> with the data of each event they complete.</summary>
    public void Feed<TState>(ReadOnlySpan<byte> bytes, TState state, Action<TState, ReadOnlySpan<byte>> onEvent)
    {
        while (!bytes.IsEmpty)
        {
            var newline = bytes.IndexOf((byte)'\n');
            if (newline < 0)
            {
                _line.Write(bytes);
                return;
            }

            ReadOnlySpan<byte> line;
            if (_line.WrittenCount == 0)
            {
                line = bytes[..newline];
            }
            else
            {
                _line.Write(bytes[..newline]);
                line = _line.WrittenSpan;
            }
            if (!line.IsEmpty && line[^1] == (byte)'\r')
            {
                line = line[..^1];
            }
            ProcessLine(line, state, onEvent);
            _line.ResetWrittenCount();
            bytes = bytes[(newline + 1)..];
        }
    }

    private void ProcessLine<TState>(ReadOnlySpan<byte> line, TState state, Action<TState, ReadOnlySpan<byte>> onEvent)
    {
        if (line.IsEmpty)
        {
            if (_hasData)
            {
                onEvent(state, _data.WrittenSpan);
                _data.ResetWrittenCount();
                _hasData = false;
            }
            return;
        }
        if (!line.StartsWith("data:"u8))
        {
            return; // comment (":" keep-alive), event, id or retry field
        }
        var value = line[5..];
        if (!value.IsEmpty && value[0] == (byte)' ')
        {
            value = value[1..];
        }
        if (_hasData)
        {
            _data.Write("\n"u8);
        }
        _data.Write(value);
        _hasData = true;
    }
}
