using System.Net;
using System.Text.Json;
using Amazon.Runtime.EventStreams;
using LlmProxy.Simulator;
using LlmProxy.Simulator.Bedrock;
using static LlmProxy.Tests.Simulator.BedrockHttp;
using static LlmProxy.Tests.Simulator.SimulatorHttp;
using Xunit;

namespace LlmProxy.Tests.Simulator;

public sealed class BedrockStreamTests : IAsyncLifetime
{
    private SimulatorServer _server = null!;
    private HttpClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        _server = await SimulatorServer.StartAsync(new SimulatorOptions(), ct: Ct);
        _client = CreateClient(_server, apiKey: null);
    }

    public async ValueTask DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync();
    }

    private static string Type(EventStreamMessage message) => message.HeaderOf(":event-type");

    [Fact]
    public void Build_TextReply_MessageStartDeltasStopMessageStopInOrder()
    {
        var reply = new ConverseReply([new ConverseTextBlock(["Simulated", " reply"])], "end_turn", 5, 2);

        var events = ConverseStreamEvents.Build(reply).Append(ConverseStreamEvents.Metadata(reply, 42, 5))
            .Select(e => DecodeEventStream(ConverseStreamEvents.Encode(e)).Single()).ToList();

        Assert.Equal(["messageStart", "contentBlockDelta", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata"], events.Select(Type));
        Assert.All(events, e =>
        {
            Assert.Equal("application/json", e.HeaderOf(":content-type"));
            Assert.Equal("event", e.HeaderOf(":message-type"));
            Assert.StartsWith("a", e.PayloadOf().GetProperty("p").GetString());
        });
        string Without(EventStreamMessage e) => JsonSerializer.Serialize(
            e.PayloadOf().EnumerateObject().Where(p => p.Name != "p").ToDictionary(p => p.Name, p => p.Value));
        Assert.Equal("""{"role":"assistant"}""", Without(events[0]));
        Assert.Equal("""{"contentBlockIndex":0,"delta":{"text":"Simulated"}}""", Without(events[1]));
        Assert.Equal("""{"contentBlockIndex":0,"delta":{"text":" reply"}}""", Without(events[2]));
        Assert.Equal("""{"contentBlockIndex":0}""", Without(events[3]));
        Assert.Equal("""{"stopReason":"end_turn"}""", Without(events[4]));
        Assert.Equal("""{"usage":{"inputTokens":5,"outputTokens":2,"totalTokens":7},"metrics":{"latencyMs":42}}""", Without(events[5]));
    }

    [Fact]
    public void Build_ToolUseReply_StartNamesTheToolAndDeltasCarryInputFragments()
    {
        var input = """{"city":"sample","unit":"celsius"}""";
        var reply = new ConverseReply([new ConverseToolUseBlock("tooluse_abc", "get_weather", input), new ConverseToolUseBlock("tooluse_def", "get_time", "{}")], "tool_use", 5, 4);

        var events = ConverseStreamEvents.Build(reply);

        var start = JsonDocument.Parse(events[1].Payload).RootElement;
        Assert.Equal("contentBlockStart", events[1].EventType);
        Assert.Equal(0, start.GetProperty("contentBlockIndex").GetInt32());
        Assert.Equal("""{"toolUse":{"toolUseId":"tooluse_abc","name":"get_weather"}}""", start.GetProperty("start").GetRawText());
        var fragments = events.Where(e => e.EventType == "contentBlockDelta")
            .Select(e => JsonDocument.Parse(e.Payload).RootElement)
            .Where(p => p.GetProperty("contentBlockIndex").GetInt32() == 0)
            .Select(p => p.GetProperty("delta").GetProperty("toolUse").GetProperty("input").GetString())
            .ToList();
        Assert.True(fragments.Count > 1);
        Assert.Equal(input, string.Concat(fragments));
        Assert.Equal(
            ["messageStart", "contentBlockStart", .. Enumerable.Repeat("contentBlockDelta", fragments.Count), "contentBlockStop",
             "contentBlockStart", "contentBlockDelta", "contentBlockStop", "messageStop"],
            events.Select(e => e.EventType));
    }

    [Fact]
    public async Task ConverseStream_TextPrompt_EventStreamReassemblesToTheConverseAnswer()
    {
        using var whole = await _client.PostConverseAsync(_server, UserConverse("Stream me something"));
        var expected = await whole.ReadJsonAsync();

        using var response = await _client.PostConverseAsync(_server, UserConverse("Stream me something"), modelId: ProfileArn, stream: true);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/vnd.amazon.eventstream", response.Content.Headers.ContentType?.MediaType);
        Assert.True(response.Headers.Contains("x-amzn-RequestId"));
        var events = await response.ReadEventStreamAsync();
        Assert.Equal("messageStart", Type(events[0]));
        Assert.Equal(["contentBlockStop", "messageStop", "metadata"], events[^3..].Select(Type));
        var text = string.Concat(events.Where(e => Type(e) == "contentBlockDelta").Select(e => e.PayloadOf().GetProperty("delta").GetProperty("text").GetString()));
        Assert.Equal(expected.GetProperty("output").GetProperty("message").GetProperty("content")[0].GetProperty("text").GetString(), text);
        Assert.Equal("end_turn", events[^2].PayloadOf().GetProperty("stopReason").GetString());
        Assert.Equal(expected.GetProperty("usage").GetRawText(), events[^1].PayloadOf().GetProperty("usage").GetRawText());
    }

    [Fact]
    public async Task ConverseStream_ToolsOffered_InputFragmentsReassembleToTheConverseInput()
    {
        using var whole = await _client.PostConverseAsync(_server, UserConverse("Weather?", "," + WeatherToolConfig));
        var expected = (await whole.ReadJsonAsync()).GetProperty("output").GetProperty("message").GetProperty("content")[0].GetProperty("toolUse");

        using var response = await _client.PostConverseAsync(_server, UserConverse("Weather?", "," + WeatherToolConfig), stream: true);

        var events = await response.ReadEventStreamAsync();
        var start = events.Single(e => Type(e) == "contentBlockStart").PayloadOf().GetProperty("start").GetProperty("toolUse");
        Assert.Equal("get_weather", start.GetProperty("name").GetString());
        Assert.StartsWith("tooluse_", start.GetProperty("toolUseId").GetString());
        var input = string.Concat(events.Where(e => Type(e) == "contentBlockDelta").Select(e => e.PayloadOf().GetProperty("delta").GetProperty("toolUse").GetProperty("input").GetString()));
        Assert.Equal(expected.GetProperty("input").GetRawText(), input);
        Assert.Equal("tool_use", events.Single(e => Type(e) == "messageStop").PayloadOf().GetProperty("stopReason").GetString());
    }

    [Theory]
    [InlineData(429, 429, "ThrottlingException")]
    [InlineData(500, 500, "InternalServerException")]
    [InlineData(503, 503, "ServiceUnavailableException")]
    [InlineData(408, 408, "ModelTimeoutException")]
    [InlineData(504, 408, "ModelTimeoutException")]
    [InlineData(403, 403, "AccessDeniedException")]
    [InlineData(424, 424, "ModelErrorException")]
    public async Task StatusFault_BedrockExceptionForTheStatus(int faultStatus, int status, string errorType)
    {
        _server.Faults.Set(SimulatorFault.Status(faultStatus, retryAfterSeconds: faultStatus == 429 ? 3 : null), count: 2);

        using var converse = await _client.PostConverseAsync(_server, UserConverse("hi"));
        using var stream = await _client.PostConverseAsync(_server, UserConverse("hi"), stream: true);

        foreach (var response in new[] { converse, stream })
        {
            Assert.Equal(status, (int)response.StatusCode);
            Assert.Equal($"{errorType}:http://internal.amazon.com/coral/com.amazon.bedrock/", (await response.ReadBedrockErrorAsync()).Type);
            Assert.Equal(faultStatus == 429 ? TimeSpan.FromSeconds(3) : null, response.Headers.RetryAfter?.Delta);
        }
    }

    [Theory]
    [InlineData(null, "modelStreamErrorException")]
    [InlineData(429, "throttlingException")]
    [InlineData(503, "serviceUnavailableException")]
    [InlineData(500, "internalServerException")]
    public async Task MidStreamError_ExceptionMessageAfterTheGivenNumberOfEvents(int? status, string exceptionType)
    {
        _server.Faults.Set(SimulatorFault.MidStreamError(afterChunks: 2, status), count: 1);

        using var response = await _client.PostConverseAsync(_server, UserConverse("Stream me something"), stream: true);

        var messages = await response.ReadEventStreamAsync();
        Assert.Equal(3, messages.Count);
        Assert.Equal(["messageStart", "contentBlockDelta"], messages[..2].Select(Type));
        var exception = messages[2];
        Assert.Equal("exception", exception.HeaderOf(":message-type"));
        Assert.Equal(exceptionType, exception.HeaderOf(":exception-type"));
        Assert.False(string.IsNullOrEmpty(exception.PayloadOf().GetProperty("message").GetString()));
    }

    [Fact]
    public async Task MidStreamError_LeavesConverseAlone()
    {
        _server.Faults.Set(SimulatorFault.MidStreamError(afterChunks: 0), count: 1);

        using var converse = await _client.PostConverseAsync(_server, UserConverse("hi"));

        Assert.Equal(HttpStatusCode.OK, converse.StatusCode);
        Assert.NotNull(_server.Faults.Current);
    }

    [Fact]
    public async Task MidStreamAbort_StreamEndsAfterTheGivenEventsWithoutItsEnd()
    {
        _server.Faults.Set(SimulatorFault.MidStreamAbort(afterChunks: 3), count: 1);

        using var response = await _client.PostConverseAsync(_server, UserConverse("Stream me something"), stream: true);

        var received = new List<byte>();
        await using var body = await response.Content.ReadAsStreamAsync(Ct);
        var buffer = new byte[4096];
        await Assert.ThrowsAnyAsync<IOException>(async () =>
        {
            int read;
            while ((read = await body.ReadAsync(buffer, Ct)) > 0)
            {
                received.AddRange(buffer.AsSpan(0, read).ToArray());
            }
        });
        Assert.Equal(["messageStart", "contentBlockDelta", "contentBlockDelta"], DecodeEventStream([.. received]).Select(Type));
    }

    [Fact]
    public async Task ResetFault_ConnectionFailsBeforeAnyResponse()
    {
        _server.Faults.Set(SimulatorFault.Reset(), count: 1);

        await Assert.ThrowsAsync<HttpRequestException>(() => _client.PostConverseAsync(_server, UserConverse("hi")));
    }

    [Fact]
    public async Task HangFault_NoAnswerUntilTheClientGivesUp()
    {
        _server.Faults.Set(SimulatorFault.Hang(), count: 1);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromMilliseconds(300));

        using var request = SignedRequest(_server.BaseAddress, RawPath(ModelId), UserConverse("hi"));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _client.SendAsync(request, timeout.Token));
    }

    [Fact]
    public async Task ChunkDelayAndLatency_ApplyToTheEventStream()
    {
        await using var slow = await SimulatorServer.StartAsync(new SimulatorOptions { Latency = TimeSpan.FromMilliseconds(400), ChunkDelay = TimeSpan.FromMilliseconds(30) }, ct: Ct);
        using var client = CreateClient(slow, apiKey: null);
        var started = System.Diagnostics.Stopwatch.StartNew();

        using var response = await client.PostConverseAsync(slow, UserConverse("one two"), stream: true);
        var headersAt = started.Elapsed;
        var events = await response.ReadEventStreamAsync();

        // Headers at once; then Latency, then ChunkDelay between each of the 9 events (5 words).
        Assert.True(headersAt < TimeSpan.FromMilliseconds(400), $"headers took {headersAt}");
        Assert.Equal(9, events.Count);
        Assert.True(started.Elapsed >= TimeSpan.FromMilliseconds(400 + (8 * 30)), $"the stream took {started.Elapsed}");
    }
}
