using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;

namespace LlmProxy.Providers.Bedrock;

// The AWS event-stream binary framing (application/vnd.amazon.eventstream), as used by Bedrock's
// ConverseStream and InvokeModelWithResponseStream. A reader of our own: the AWS SDK's decoder is internal
// and lost messages when fed at an offset into its buffer. Tests encode with the SDK's EventStreamMessage.
//
// One message:
//   prelude   total length (uint32 BE) | headers length (uint32 BE) | prelude CRC32 (over the 8 bytes before it)
//   headers   repeated: name length (uint8) | name (UTF-8) | value type (uint8) | value
//   payload   total length - headers length - 16 bytes
//   trailer   message CRC32 (over everything before it)
// All integers are big-endian; the CRC is CRC-32 (IEEE 802.3, the zlib one: System.IO.Hashing.Crc32).

/// <summary>Header value types of the event-stream encoding.</summary>
internal enum AwsEventStreamHeaderType : byte
{
    BoolTrue = 0,
    BoolFalse = 1,
    Byte = 2,
    Int16 = 3,
    Int32 = 4,
    Int64 = 5,
    ByteArray = 6,
    String = 7,
    Timestamp = 8,
    Uuid = 9,
}

/// <summary>
/// One header. <see cref="Value"/> is a <see cref="bool"/>, <see cref="sbyte"/>, <see cref="short"/>,
/// <see cref="int"/>, <see cref="long"/>, <see cref="byte"/>[], <see cref="string"/>,
/// <see cref="DateTimeOffset"/> (millisecond precision) or <see cref="Guid"/>, matching <see cref="Type"/>.
/// </summary>
internal readonly record struct AwsEventStreamHeader(string Name, AwsEventStreamHeaderType Type, object Value);

/// <summary>One decoded message: its headers in wire order and its payload.</summary>
internal sealed class AwsEventStreamMessage(IReadOnlyList<AwsEventStreamHeader> headers, ReadOnlyMemory<byte> payload)
{
    public const string MessageTypeHeader = ":message-type";
    public const string EventTypeHeader = ":event-type";
    public const string ExceptionTypeHeader = ":exception-type";
    public const string ErrorCodeHeader = ":error-code";
    public const string ErrorMessageHeader = ":error-message";

    public IReadOnlyList<AwsEventStreamHeader> Headers { get; } = headers;
    public ReadOnlyMemory<byte> Payload { get; } = payload;

    /// <summary>The value of a string header, or null when the header is absent or not a string.</summary>
    public string? GetString(string name)
    {
        foreach (var header in Headers)
        {
            if (header.Name == name && header.Value is string value)
            {
                return value;
            }
        }
        return null;
    }

    /// <summary><c>event</c>, <c>exception</c> or <c>error</c>.</summary>
    public string? MessageType => GetString(MessageTypeHeader);
}

/// <summary>Malformed event-stream bytes: bad lengths, a CRC mismatch or an unknown header type.</summary>
internal sealed class AwsEventStreamFormatException(string message) : Exception(message);

/// <summary>
/// Incremental decoder: feed it the body in whatever pieces the network delivers, and it hands out each
/// message as soon as its last byte arrived. Only the current, incomplete message is buffered.
/// </summary>
internal sealed class AwsEventStreamReader
{
    public const int PreludeLength = 12;
    public const int MinimumMessageLength = PreludeLength + 4;

    /// <summary>The largest message accepted. AWS caps event-stream messages at 16 MiB; the default follows it.</summary>
    public int MaxMessageLength { get; init; } = 16 * 1024 * 1024;

    private byte[] _buffer = new byte[1024];
    private int _count;
    private int _expected; // total length of the message being read; 0 while its prelude is incomplete
    private bool _faulted;

    /// <summary>Bytes held for a message that is not complete yet. Non-zero at the end of a body means it was cut.</summary>
    public int BufferedBytes => _count;

    /// <summary>
    /// Consumes <paramref name="bytes"/> and calls <paramref name="onMessage"/> for every message they
    /// complete. Throws <see cref="AwsEventStreamFormatException"/> on malformed input; the reader is
    /// unusable after that (the framing is lost).
    /// </summary>
    public void Feed(ReadOnlySpan<byte> bytes, Action<AwsEventStreamMessage> onMessage)
    {
        ArgumentNullException.ThrowIfNull(onMessage);
        if (_faulted)
        {
            throw new AwsEventStreamFormatException("The event stream reader failed earlier; its framing is lost.");
        }
        try
        {
            while (!bytes.IsEmpty)
            {
                var need = (_expected == 0 ? PreludeLength : _expected) - _count;
                var take = Math.Min(need, bytes.Length);
                Append(bytes[..take]);
                bytes = bytes[take..];
                if (take < need)
                {
                    return;
                }
                if (_expected == 0)
                {
                    _expected = ReadPrelude(_buffer.AsSpan(0, PreludeLength));
                    continue;
                }
                var message = Decode(_buffer.AsSpan(0, _expected));
                _count = 0;
                _expected = 0;
                onMessage(message);
            }
        }
        catch (AwsEventStreamFormatException)
        {
            _faulted = true;
            throw;
        }
    }

    private void Append(ReadOnlySpan<byte> bytes)
    {
        if (_count + bytes.Length > _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _count + bytes.Length));
        }
        bytes.CopyTo(_buffer.AsSpan(_count));
        _count += bytes.Length;
    }

    /// <summary>Validates a prelude and returns the message's total length.</summary>
    private int ReadPrelude(ReadOnlySpan<byte> prelude)
    {
        var total = BinaryPrimitives.ReadUInt32BigEndian(prelude);
        var headersLength = BinaryPrimitives.ReadUInt32BigEndian(prelude[4..]);
        var crc = BinaryPrimitives.ReadUInt32BigEndian(prelude[8..]);
        if (Crc32.HashToUInt32(prelude[..8]) != crc)
        {
            throw new AwsEventStreamFormatException("Event stream prelude checksum mismatch.");
        }
        if (total < MinimumMessageLength || total > (uint)MaxMessageLength)
        {
            throw new AwsEventStreamFormatException($"Event stream message length {total} is out of range.");
        }
        if (headersLength > total - MinimumMessageLength)
        {
            throw new AwsEventStreamFormatException($"Event stream headers length {headersLength} exceeds the message.");
        }
        return (int)total;
    }

    /// <summary>Decodes one complete message (prelude included) and checks both checksums.</summary>
    public static AwsEventStreamMessage Decode(ReadOnlySpan<byte> message)
    {
        if (message.Length < MinimumMessageLength)
        {
            throw new AwsEventStreamFormatException("Event stream message is shorter than its prelude and checksum.");
        }
        var total = BinaryPrimitives.ReadUInt32BigEndian(message);
        var headersLength = BinaryPrimitives.ReadUInt32BigEndian(message[4..]);
        if (total != message.Length || headersLength > total - MinimumMessageLength)
        {
            throw new AwsEventStreamFormatException("Event stream message lengths are inconsistent.");
        }
        if (Crc32.HashToUInt32(message[..8]) != BinaryPrimitives.ReadUInt32BigEndian(message[8..]))
        {
            throw new AwsEventStreamFormatException("Event stream prelude checksum mismatch.");
        }
        if (Crc32.HashToUInt32(message[..^4]) != BinaryPrimitives.ReadUInt32BigEndian(message[^4..]))
        {
            throw new AwsEventStreamFormatException("Event stream message checksum mismatch.");
        }
        var headers = ReadHeaders(message.Slice(PreludeLength, (int)headersLength));
        var payload = message[(PreludeLength + (int)headersLength)..^4].ToArray();
        return new AwsEventStreamMessage(headers, payload);
    }

    private static List<AwsEventStreamHeader> ReadHeaders(ReadOnlySpan<byte> span)
    {
        var headers = new List<AwsEventStreamHeader>(4);
        while (!span.IsEmpty)
        {
            var nameLength = span[0];
            if (nameLength == 0 || span.Length < 1 + nameLength + 1)
            {
                throw new AwsEventStreamFormatException("Event stream header is truncated.");
            }
            var name = Encoding.UTF8.GetString(span.Slice(1, nameLength));
            var type = (AwsEventStreamHeaderType)span[1 + nameLength];
            span = span[(2 + nameLength)..];
            object value;
            switch (type)
            {
                case AwsEventStreamHeaderType.BoolTrue: value = true; break;
                case AwsEventStreamHeaderType.BoolFalse: value = false; break;
                case AwsEventStreamHeaderType.Byte: value = (sbyte)Take(ref span, 1)[0]; break;
                case AwsEventStreamHeaderType.Int16: value = BinaryPrimitives.ReadInt16BigEndian(Take(ref span, 2)); break;
                case AwsEventStreamHeaderType.Int32: value = BinaryPrimitives.ReadInt32BigEndian(Take(ref span, 4)); break;
                case AwsEventStreamHeaderType.Int64: value = BinaryPrimitives.ReadInt64BigEndian(Take(ref span, 8)); break;
                case AwsEventStreamHeaderType.ByteArray:
                    value = Take(ref span, BinaryPrimitives.ReadUInt16BigEndian(Take(ref span, 2))).ToArray();
                    break;
                case AwsEventStreamHeaderType.String:
                    value = Encoding.UTF8.GetString(Take(ref span, BinaryPrimitives.ReadUInt16BigEndian(Take(ref span, 2))));
                    break;
                case AwsEventStreamHeaderType.Timestamp:
                    value = DateTimeOffset.FromUnixTimeMilliseconds(BinaryPrimitives.ReadInt64BigEndian(Take(ref span, 8)));
                    break;
                case AwsEventStreamHeaderType.Uuid:
                    value = new Guid(Take(ref span, 16), bigEndian: true);
                    break;
                default:
                    throw new AwsEventStreamFormatException($"Event stream header '{name}' has unknown value type {(byte)type}.");
            }
            headers.Add(new AwsEventStreamHeader(name, type, value));
        }
        return headers;
    }

    private static ReadOnlySpan<byte> Take(ref ReadOnlySpan<byte> span, int length)
    {
        if (span.Length < length)
        {
            throw new AwsEventStreamFormatException("Event stream header value is truncated.");
        }
        var taken = span[..length];
        span = span[length..];
        return taken;
    }
}
