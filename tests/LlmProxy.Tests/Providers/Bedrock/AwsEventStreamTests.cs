using Xunit;
using System.Buffers.Binary;
using System.Text;
using Amazon.Runtime.EventStreams;
using LlmProxy.Providers.Bedrock;

namespace LlmProxy.Tests.Providers.Bedrock;

public class AwsEventStreamTests
{
    private static List<AwsEventStreamMessage> ReadAll(AwsEventStreamReader reader, byte[] bytes, int chunkSize)
    {
        var messages = new List<AwsEventStreamMessage>();
        for (var offset = 0; offset < bytes.Length; offset += chunkSize)
        {
            reader.Feed(bytes.AsSpan(offset, Math.Min(chunkSize, bytes.Length - offset)), messages.Add);
        }
        return messages;
    }

    [Fact]
    public void Feed_MessageEncodedByAwsSdk_DecodesHeadersAndPayload()
    {
        var bytes = AwsSdkEventStream.Event("contentBlockDelta", """{"contentBlockIndex":0,"delta":{"text":"Hi"}}""");

        var messages = ReadAll(new AwsEventStreamReader(), bytes, bytes.Length);

        var message = Assert.Single(messages);
        Assert.Equal("event", message.MessageType);
        Assert.Equal("contentBlockDelta", message.GetString(AwsEventStreamMessage.EventTypeHeader));
        Assert.Equal("application/json", message.GetString(":content-type"));
        Assert.Equal("""{"contentBlockIndex":0,"delta":{"text":"Hi"}}""", Encoding.UTF8.GetString(message.Payload.Span));
    }

    [Fact]
    public void Feed_EveryHeaderTypeEncodedByAwsSdk_DecodesEachValue()
    {
        var guid = Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950e");
        var time = new DateTime(2024, 5, 6, 7, 8, 9, 123, DateTimeKind.Utc);
        var headers = new List<IEventStreamHeader>();
        void Add(string name, Action<EventStreamHeader> set)
        {
            var header = new EventStreamHeader(name);
            set(header);
            headers.Add(header);
        }
        Add("t", h => h.SetBool(true));
        Add("f", h => h.SetBool(false));
        Add("b", h => h.SetSByte(-5));
        Add("s", h => h.SetInt16(-300));
        Add("i", h => h.SetInt32(70000));
        Add("l", h => h.SetInt64(-5_000_000_000));
        Add("bytes", h => h.SetByteBuf([1, 2, 3]));
        Add("str", h => h.SetString("héllo"));
        Add("ts", h => h.SetTimestamp(time));
        Add("uuid", h => h.SetUUID(guid));
        var bytes = new EventStreamMessage(headers, [9, 8, 7]).ToByteArray();

        var message = Assert.Single(ReadAll(new AwsEventStreamReader(), bytes, 1));

        var values = message.Headers.ToDictionary(h => h.Name, h => h.Value);
        Assert.Equal(true, values["t"]);
        Assert.Equal(false, values["f"]);
        Assert.Equal((sbyte)-5, values["b"]);
        Assert.Equal((short)-300, values["s"]);
        Assert.Equal(70000, values["i"]);
        Assert.Equal(-5_000_000_000L, values["l"]);
        Assert.Equal(new byte[] { 1, 2, 3 }, (byte[])values["bytes"]);
        Assert.Equal("héllo", values["str"]);
        Assert.Equal(new DateTimeOffset(time), values["ts"]);
        // The wire form of a UUID is its 16 bytes in RFC 4122 order (as the Java and JavaScript SDKs write them);
        // the .NET SDK writes Guid.ToByteArray(), whose first three fields are little-endian.
        Assert.Equal(new Guid(guid.ToByteArray(), bigEndian: true), values["uuid"]);
        Assert.Equal(new byte[] { 9, 8, 7 }, message.Payload.ToArray());
    }

    [Fact]
    public void Feed_ManyMessagesSplitAtEveryOffset_SameMessagesAsWhole()
    {
        var stream = Concat(
            AwsSdkEventStream.Event("messageStart", """{"role":"assistant"}"""),
            AwsSdkEventStream.Event("contentBlockDelta", """{"contentBlockIndex":0,"delta":{"text":"a"}}"""),
            AwsSdkEventStream.Encode([(":message-type", "event"), (":event-type", "empty")], ""),
            AwsSdkEventStream.Event("messageStop", """{"stopReason":"end_turn"}"""));
        var whole = Describe(ReadAll(new AwsEventStreamReader(), stream, stream.Length));
        Assert.Equal(4, whole.Count);

        for (var split = 1; split < stream.Length; split++)
        {
            var reader = new AwsEventStreamReader();
            var messages = new List<AwsEventStreamMessage>();
            reader.Feed(stream.AsSpan(0, split), messages.Add);
            reader.Feed(stream.AsSpan(split), messages.Add);
            Assert.Equal(whole, Describe(messages));
            Assert.Equal(0, reader.BufferedBytes);
        }
        Assert.Equal(whole, Describe(ReadAll(new AwsEventStreamReader(), stream, 1)));
    }

    [Fact]
    public void Feed_IncompleteMessage_KeepsBytesBuffered()
    {
        var bytes = AwsSdkEventStream.Event("messageStart", """{"role":"assistant"}""");
        var reader = new AwsEventStreamReader();
        var messages = new List<AwsEventStreamMessage>();

        reader.Feed(bytes.AsSpan(0, bytes.Length - 1), messages.Add);

        Assert.Empty(messages);
        Assert.Equal(bytes.Length - 1, reader.BufferedBytes);
    }

    public static TheoryData<string, int> Corruptions => new()
    {
        { "total length", 2 },
        { "headers length", 6 },
        { "prelude crc", 9 },
        { "header name", 13 },
        { "payload", -6 },
        { "message crc", -1 },
    };

    [Theory]
    [MemberData(nameof(Corruptions))]
    public void Feed_CorruptedByte_ThrowsFormatException(string where, int offset)
    {
        var bytes = AwsSdkEventStream.Event("contentBlockDelta", """{"contentBlockIndex":0,"delta":{"text":"abc"}}""");
        bytes[offset >= 0 ? offset : bytes.Length + offset] ^= 0x10;
        var reader = new AwsEventStreamReader();

        var ex = Assert.Throws<AwsEventStreamFormatException>(() => reader.Feed(bytes, _ => Assert.Fail($"decoded despite a corrupt {where}")));

        Assert.Contains("Event stream", ex.Message);
        // The framing is lost for good: no later bytes are trusted.
        Assert.Throws<AwsEventStreamFormatException>(() => reader.Feed(AwsSdkEventStream.Event("x", "{}"), _ => { }));
    }

    [Fact]
    public void Feed_LengthAboveLimit_ThrowsBeforeBufferingTheMessage()
    {
        var prelude = new byte[12];
        BinaryPrimitives.WriteUInt32BigEndian(prelude, 64 * 1024 * 1024);
        BinaryPrimitives.WriteUInt32BigEndian(prelude.AsSpan(4), 0);
        BinaryPrimitives.WriteUInt32BigEndian(prelude.AsSpan(8), System.IO.Hashing.Crc32.HashToUInt32(prelude.AsSpan(0, 8)));

        Assert.Throws<AwsEventStreamFormatException>(() => new AwsEventStreamReader().Feed(prelude, _ => { }));
    }

    [Fact]
    public void Feed_HeadersLongerThanMessage_Throws()
    {
        var prelude = new byte[12];
        BinaryPrimitives.WriteUInt32BigEndian(prelude, 20);
        BinaryPrimitives.WriteUInt32BigEndian(prelude.AsSpan(4), 10);
        BinaryPrimitives.WriteUInt32BigEndian(prelude.AsSpan(8), System.IO.Hashing.Crc32.HashToUInt32(prelude.AsSpan(0, 8)));

        Assert.Throws<AwsEventStreamFormatException>(() => new AwsEventStreamReader().Feed(prelude, _ => { }));
    }

    internal static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    private static List<string> Describe(List<AwsEventStreamMessage> messages) =>
        messages.Select(m => string.Join(",", m.Headers.Select(h => $"{h.Name}={h.Value}")) + "|" + Encoding.UTF8.GetString(m.Payload.Span)).ToList();
}
