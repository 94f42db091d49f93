using System.Text;
using LlmProxy.ServerSentEvents;

namespace LlmProxy.Tests.ServerSentEvents;

public sealed class ServerSentEventReaderTests
{
    private const string Stream = ": keep-alive\n\ndata: {\"a\":1}\n\nevent: x\ndata: {\"b\":\r\ndata: 2}\r\n\r\ndata: [DONE]\n\n";

    private static List<string> ReadAll(IEnumerable<byte[]> pieces)
    {
        var reader = new ServerSentEventReader();
        var events = new List<string>();
        foreach (var piece in pieces)
        {
            reader.Feed(piece, events, static (list, data) => list.Add(Encoding.UTF8.GetString(data)));
        }
        return events;
    }

    [Fact]
    public void Feed_WholeStream_YieldsDataOfEachEvent()
    {
        var events = ReadAll([Encoding.UTF8.GetBytes(Stream)]);

        Assert.Equal(["{\"a\":1}", "{\"b\":\n2}", "[DONE]"], events);
    }

    [Fact]
    public void Feed_EverySplitPoint_YieldsTheSameEvents()
    {
        var bytes = Encoding.UTF8.GetBytes(Stream);
        var expected = ReadAll([bytes]);
        for (var split = 1; split < bytes.Length; split++)
        {
            Assert.Equal(expected, ReadAll([bytes[..split], bytes[split..]]));
        }
        Assert.Equal(expected, ReadAll(bytes.Select(b => new[] { b })));
    }
}
