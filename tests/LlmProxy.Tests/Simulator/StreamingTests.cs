using System.Net;
using System.Text;
using System.Text.Json;
using LlmProxy.Simulator;
using static LlmProxy.Tests.Simulator.SimulatorHttp;
using Xunit;

namespace LlmProxy.Tests.Simulator;

public sealed class StreamingTests : IAsyncLifetime
{
    private SimulatorServer _server = null!;
    private HttpClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        _server = await SimulatorServer.StartAsync(new SimulatorOptions(), ct: Ct);
        _client = CreateClient(_server);
    }

    public async ValueTask DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task Post_Stream_SendsChunksInOpenAiOrderEndingWithDone()
    {
        using var response = await _client.PostChatAsync(UserRequest("one two", model: "gpt-x", extra: ",\"stream\":true"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = await response.ReadEventsAsync();
        Assert.Equal("[DONE]", events[^1]);
        var chunks = events[..^1].Select(Parse).ToList();

        Assert.Single(chunks.Select(c => c.GetProperty("id").GetString()).Distinct());
        Assert.Single(chunks.Select(c => c.GetProperty("created").GetInt64()).Distinct());
        Assert.All(chunks, c =>
        {
            Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString());
            Assert.Equal("gpt-x", c.GetProperty("model").GetString());
            Assert.StartsWith("fp_", c.GetProperty("system_fingerprint").GetString());
            Assert.False(c.TryGetProperty("usage", out _));
            var choice = Assert.Single(c.GetProperty("choices").EnumerateArray());
            Assert.Equal(0, choice.GetProperty("index").GetInt32());
            Assert.Equal(JsonValueKind.Null, choice.GetProperty("logprobs").ValueKind);
        });

        var first = chunks[0].GetProperty("choices")[0];
        Assert.Equal("""{"role":"assistant","content":"","refusal":null}""", first.GetProperty("delta").GetRawText());
        Assert.Equal(JsonValueKind.Null, first.GetProperty("finish_reason").ValueKind);

        var contentDeltas = chunks[1..^1].Select(c => c.GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString()).ToList();
        Assert.Equal(["Simulated", " reply", " to:", " one", " two"], contentDeltas);

        var last = chunks[^1].GetProperty("choices")[0];
        Assert.Equal("{}", last.GetProperty("delta").GetRawText());
        Assert.Equal("stop", last.GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task Post_StreamWithIncludeUsage_EveryChunkHasNullUsageAndLastHasUsageWithNoChoices()
    {
        using var response = await _client.PostChatAsync(UserRequest("one two", extra: ",\"stream\":true,\"stream_options\":{\"include_usage\":true}"));

        var events = await response.ReadEventsAsync();
        var chunks = events[..^1].Select(Parse).ToList();
        Assert.All(chunks[..^1], c => Assert.Equal(JsonValueKind.Null, c.GetProperty("usage").ValueKind));
        var usageChunk = chunks[^1];
        Assert.Equal(0, usageChunk.GetProperty("choices").GetArrayLength());
        Assert.Equal(5, usageChunk.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(5, usageChunk.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(10, usageChunk.GetProperty("usage").GetProperty("total_tokens").GetInt32());
    }

    [Fact]
    public async Task Post_StreamedContent_ReassemblesToNonStreamedContent()
    {
        var extra = ",\"max_tokens\":6,\"n\":2";
        using var plain = await _client.PostChatAsync(UserRequest("The  quick\nbrown fox jumps", extra: extra));
        using var streamed = await _client.PostChatAsync(UserRequest("The  quick\nbrown fox jumps", extra: extra + ",\"stream\":true"));

        var expected = (await plain.ReadJsonAsync()).GetProperty("choices").EnumerateArray()
            .Select(c => (c.GetProperty("message").GetProperty("content").GetString(), c.GetProperty("finish_reason").GetString()))
            .ToList();
        var chunks = (await streamed.ReadEventsAsync())[..^1].Select(Parse).ToList();
        var content = new[] { new StringBuilder(), new StringBuilder() };
        var finish = new string?[2];
        foreach (var choice in chunks.SelectMany(c => c.GetProperty("choices").EnumerateArray()))
        {
            var index = choice.GetProperty("index").GetInt32();
            if (choice.GetProperty("delta").TryGetProperty("content", out var delta) && delta.ValueKind == JsonValueKind.String)
            {
                content[index].Append(delta.GetString());
            }

            if (choice.GetProperty("finish_reason").ValueKind == JsonValueKind.String)
            {
                finish[index] = choice.GetProperty("finish_reason").GetString();
            }
        }

        Assert.Equal(expected, [(content[0].ToString(), finish[0]), (content[1].ToString(), finish[1])]);
        Assert.Equal("length", finish[0]);
    }

    [Fact]
    public async Task Post_StreamWithTools_SendsCallHeaderThenArgumentFragmentsThatReassembleToJson()
    {
        using var response = await _client.PostChatAsync(UserRequest("parallel please", extra: ",\"stream\":true," + WeatherTools));

        var chunks = (await response.ReadEventsAsync())[..^1].Select(Parse).ToList();
        var deltas = chunks.Select(c => c.GetProperty("choices")[0]).ToList();
        Assert.Equal("""{"role":"assistant","content":null,"refusal":null}""", deltas[0].GetProperty("delta").GetRawText());
        Assert.Equal("tool_calls", deltas[^1].GetProperty("finish_reason").GetString());

        var calls = new SortedDictionary<int, (string? Id, string? Type, string? Name, StringBuilder Arguments, int Fragments)>();
        foreach (var toolCall in deltas.Where(d => d.GetProperty("delta").TryGetProperty("tool_calls", out _))
                     .SelectMany(d => d.GetProperty("delta").GetProperty("tool_calls").EnumerateArray()))
        {
            var index = toolCall.GetProperty("index").GetInt32();
            var function = toolCall.GetProperty("function");
            if (toolCall.TryGetProperty("id", out var id))
            {
                Assert.False(calls.ContainsKey(index), "each call is introduced once");
                Assert.Equal("", function.GetProperty("arguments").GetString());
                calls[index] = (id.GetString(), toolCall.GetProperty("type").GetString(), function.GetProperty("name").GetString(), new StringBuilder(), 0);
                continue;
            }

            Assert.False(function.TryGetProperty("name", out _), "fragments carry only arguments");
            var call = calls[index];
            call.Arguments.Append(function.GetProperty("arguments").GetString());
            calls[index] = call with { Fragments = call.Fragments + 1 };
        }

        Assert.Equal([0, 1], calls.Keys);
        Assert.All(calls.Values, call =>
        {
            Assert.Matches("^call_[0-9a-f]{24}$", call.Id);
            Assert.Equal("function", call.Type);
            Assert.True(call.Fragments > 1, "arguments are split into several fragments");
            using var arguments = JsonDocument.Parse(call.Arguments.ToString());
            Assert.Equal(JsonValueKind.Object, arguments.RootElement.ValueKind);
        });
        Assert.Equal("get_weather", calls[0].Name);
        Assert.Equal("""{"city":"sample","unit":"celsius","days":1}""", calls[0].Arguments.ToString());
        Assert.Equal("get_time", calls[1].Name);
    }

    [Fact]
    public async Task Post_StreamWithChunkDelay_DeliversEachEventAsItIsProduced()
    {
        var delay = TimeSpan.FromMilliseconds(100);
        await using var slow = await SimulatorServer.StartAsync(new SimulatorOptions { ChunkDelay = delay }, ct: Ct);
        using var client = CreateClient(slow);
        using var response = await client.PostChatAsync(UserRequest("a b", extra: ",\"stream\":true"));
        await using var stream = await response.Content.ReadAsStreamAsync(Ct);
        using var reader = new StreamReader(stream);

        // Relative timing only (absolute bounds flake on a busy machine): if the server buffered the stream,
        // every event would arrive in one burst; flushed one by one, they arrive spread over the delays.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var arrivals = new List<TimeSpan>();
        while (await reader.ReadLineAsync(Ct) is { } line)
        {
            if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                arrivals.Add(clock.Elapsed);
            }
        }

        Assert.Equal(8, arrivals.Count); // role, 5 words, finish, [DONE]: 7 delays between them
        Assert.True(arrivals[^1] - arrivals[0] >= delay * (arrivals.Count - 1) * 0.9, $"events arrived at {string.Join(", ", arrivals)}");
    }

    [Fact]
    public async Task Post_StreamWithLatency_SendsHeadersAtOnceAndTheFirstChunkLater()
    {
        var latency = TimeSpan.FromMilliseconds(400);
        await using var slow = await SimulatorServer.StartAsync(new SimulatorOptions { Latency = latency }, ct: Ct);
        using var client = CreateClient(slow);

        using var response = await client.PostChatAsync(UserRequest("a", extra: ",\"stream\":true"));
        var afterHeaders = System.Diagnostics.Stopwatch.StartNew();
        var events = await response.ReadEventsAsync();

        // Had the latency been spent before the headers, the body would follow them at once.
        Assert.True(afterHeaders.Elapsed >= latency * 0.9, $"body took {afterHeaders.Elapsed} after the headers");
        Assert.Equal("[DONE]", events[^1]);
    }
}
