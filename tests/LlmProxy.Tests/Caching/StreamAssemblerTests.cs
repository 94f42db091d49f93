using System.Text;
using System.Text.Json.Nodes;
using LlmProxy.Caching;
using LlmProxy.Pipeline;

namespace LlmProxy.Tests.Caching;

public sealed class StreamAssemblerTests
{
    private static JsonObject Build(StreamAssembler assembler, TokenUsage? usage = null) =>
        (JsonObject)JsonNode.Parse(assembler.Build(usage ?? CacheTestData.Usage)!)!;

    [Fact]
    public void Build_TextChunks_ConcatenatesContentWithFinishReasonAndMeteredUsage()
    {
        var assembler = new StreamAssembler(1024 * 1024);
        foreach (var chunk in CacheTestData.TextChunks("Hello there, world", pieces: 4))
        {
            assembler.Add(chunk);
        }

        var completion = Build(assembler, new TokenUsage(11, 4, 15));

        Assert.Equal("chat.completion", completion["object"]!.GetValue<string>());
        Assert.Equal("chatcmpl-s", completion["id"]!.GetValue<string>());
        Assert.Equal(1700000002, completion["created"]!.GetValue<long>());
        var choice = completion["choices"]![0]!;
        Assert.Equal("assistant", choice["message"]!["role"]!.GetValue<string>());
        Assert.Equal("Hello there, world", choice["message"]!["content"]!.GetValue<string>());
        Assert.Equal("stop", choice["finish_reason"]!.GetValue<string>());
        Assert.Equal(11, completion["usage"]!["prompt_tokens"]!.GetValue<int>());
        Assert.Equal(15, completion["usage"]!["total_tokens"]!.GetValue<int>());
    }

    [Fact]
    public void Build_ChunkBytesAsAnUpstreamWritesThem_EscapesUnicodeAndPropertyOrderDoNotMatter()
    {
        var assembler = new StreamAssembler(1024 * 1024);
        // index after the delta (in the choice and in the tool call), escaped and non-ASCII text, spacing: read as JSON, not as a layout.
        assembler.Add(Encoding.UTF8.GetBytes("""{ "choices" : [ {"delta":{"role":"assistant","content":"h\u00e9 \"q\"\n"},"index":1} ], "model":"m","id":"c1","created":7}"""));
        assembler.Add(Encoding.UTF8.GetBytes("""{"id":"c1","choices":[{"delta":{"content":"名前","tool_calls":[{"function":{"arguments":"{\"a\":"},"id":"t1","type":"function","index":2}]},"index":1}]}"""));
        assembler.Add(Encoding.UTF8.GetBytes("""{"id":"c1","choices":[{"delta":{"tool_calls":[{"function":{"name":"f","arguments":"1}"},"index":2}]},"finish_reason":"tool_calls","index":1}]}"""));

        var completion = Build(assembler);

        var choice = Assert.Single(completion["choices"]!.AsArray())!;
        Assert.Equal(1, choice["index"]!.GetValue<int>());
        Assert.Equal("hé \"q\"\n名前", choice["message"]!["content"]!.GetValue<string>());
        var call = Assert.Single(choice["message"]!["tool_calls"]!.AsArray())!;
        Assert.Equal("t1", call["id"]!.GetValue<string>());
        Assert.Equal("f", call["function"]!["name"]!.GetValue<string>());
        Assert.Equal("{\"a\":1}", call["function"]!["arguments"]!.GetValue<string>());
        Assert.Equal("tool_calls", choice["finish_reason"]!.GetValue<string>());
        Assert.Equal(7, completion["created"]!.GetValue<int>());
        Assert.Equal("m", completion["model"]!.GetValue<string>());
    }

    [Fact]
    public void Build_AChunkThatIsNotJson_NothingToStore()
    {
        var assembler = new StreamAssembler(1024 * 1024);
        foreach (var chunk in CacheTestData.TextChunks("Hi"))
        {
            assembler.Add(chunk);
        }
        assembler.Add("{\"choices\":["u8);

        Assert.Null(assembler.Build(CacheTestData.Usage));
    }

    [Fact]
    public void Build_UsageChunkSeen_PrefersItOverMeteredUsage()
    {
        var assembler = new StreamAssembler(1024 * 1024);
        foreach (var chunk in CacheTestData.TextChunks("Hi"))
        {
            assembler.Add(chunk);
        }
        assembler.Add(CacheTestData.Body("""{"id":"chatcmpl-s","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4,"completion_tokens_details":{"reasoning_tokens":0}}}"""));

        var completion = Build(assembler, new TokenUsage(99, 99, 198));

        Assert.Equal(3, completion["usage"]!["prompt_tokens"]!.GetValue<int>());
        Assert.NotNull(completion["usage"]!["completion_tokens_details"]);
    }

    [Fact]
    public void Build_ToolCallDeltas_MergedByIndexWithArgumentsConcatenated()
    {
        var assembler = new StreamAssembler(1024 * 1024);
        string[] chunks =
        [
            """{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}""",
            """{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"finish_reason":null}]}""",
            """{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{\"tz\""}}]},"finish_reason":null}]}""",
            """{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"finish_reason":null}]}""",
            """{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":":\"CET\"}"}}]},"finish_reason":null}]}""",
            """{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}""",
        ];
        foreach (var chunk in chunks)
        {
            assembler.Add(CacheTestData.Body(chunk));
        }

        var message = Build(assembler)["choices"]![0]!["message"]!;

        Assert.Null(message["content"]);
        var calls = message["tool_calls"]!.AsArray();
        Assert.Equal(2, calls.Count);
        Assert.Equal("call_a", calls[0]!["id"]!.GetValue<string>());
        Assert.Equal("get_weather", calls[0]!["function"]!["name"]!.GetValue<string>());
        Assert.Equal("""{"city":"Paris"}""", calls[0]!["function"]!["arguments"]!.GetValue<string>());
        Assert.Equal("call_b", calls[1]!["id"]!.GetValue<string>());
        Assert.Equal("""{"tz":"CET"}""", calls[1]!["function"]!["arguments"]!.GetValue<string>());
    }

    [Fact]
    public void Build_SeveralChoices_KeptApartByIndex()
    {
        var assembler = new StreamAssembler(1024 * 1024);
        assembler.Add(CacheTestData.Body("""{"id":"c","created":1,"model":"m","choices":[{"index":1,"delta":{"content":"B1"},"finish_reason":null},{"index":0,"delta":{"content":"A1"},"finish_reason":null}]}"""));
        assembler.Add(CacheTestData.Body("""{"id":"c","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"A2"},"finish_reason":"stop"}]}"""));
        assembler.Add(CacheTestData.Body("""{"id":"c","created":1,"model":"m","choices":[{"index":1,"delta":{"content":"B2"},"finish_reason":"length"}]}"""));

        var choices = Build(assembler)["choices"]!.AsArray();

        Assert.Equal("A1A2", choices[0]!["message"]!["content"]!.GetValue<string>());
        Assert.Equal("B1B2", choices[1]!["message"]!["content"]!.GetValue<string>());
        Assert.Equal("length", choices[1]!["finish_reason"]!.GetValue<string>());
    }

    [Fact]
    public void Build_MissingFinishReason_ReturnsNull()
    {
        var assembler = new StreamAssembler(1024 * 1024);
        foreach (var chunk in CacheTestData.TextChunks("Hi").SkipLast(1))
        {
            assembler.Add(chunk);
        }

        Assert.Null(assembler.Build(CacheTestData.Usage));
    }

    [Fact]
    public void Build_NoChoices_ReturnsNull()
    {
        Assert.Null(new StreamAssembler(1024).Build(CacheTestData.Usage));
    }

    [Fact]
    public void Add_OverMaxBytes_MarksTooLarge()
    {
        var assembler = new StreamAssembler(100);
        foreach (var chunk in CacheTestData.TextChunks(new string('x', 500)))
        {
            assembler.Add(chunk);
        }

        Assert.True(assembler.TooLarge);
        Assert.Null(assembler.Build(CacheTestData.Usage));
    }

    [Fact]
    public void Build_EstimatedUsageOnly_OmitsUsage()
    {
        var assembler = new StreamAssembler(1024 * 1024);
        foreach (var chunk in CacheTestData.TextChunks("Hi"))
        {
            assembler.Add(chunk);
        }

        var completion = Build(assembler, new TokenUsage(1, 1, 2, Estimated: true));

        Assert.Null(completion["usage"]);
    }

    [Theory]
    [InlineData(CacheTestData.Completion, true)]
    [InlineData(CacheTestData.ToolCompletion, true)]
    [InlineData(CacheTestData.Completion, false)]
    public void Replay_ThenAssemble_GivesBackTheSameCompletion(string json, bool includeUsage)
    {
        var chunks = CachedResponseReplay.ToChunks(Encoding.UTF8.GetBytes(json), includeUsage);
        var assembler = new StreamAssembler(1024 * 1024);
        foreach (var chunk in chunks)
        {
            Assert.Equal("chat.completion.chunk", chunk["object"]!.GetValue<string>());
            assembler.Add(chunk);
        }

        var original = JsonNode.Parse(json)!;
        var rebuilt = JsonNode.Parse(assembler.Build(includeUsage ? null : new TokenUsage(
            original["usage"]!["prompt_tokens"]!.GetValue<int>(), original["usage"]!["completion_tokens"]!.GetValue<int>(), original["usage"]!["total_tokens"]!.GetValue<int>()))!)!;

        Assert.True(JsonNode.DeepEquals(original["choices"], rebuilt["choices"]), rebuilt.ToJsonString());
        Assert.True(JsonNode.DeepEquals(original["usage"], rebuilt["usage"]), rebuilt.ToJsonString());
        Assert.Equal(original["id"]!.GetValue<string>(), rebuilt["id"]!.GetValue<string>());
        Assert.Equal(original["created"]!.GetValue<long>(), rebuilt["created"]!.GetValue<long>());
    }

    [Fact]
    public void Replay_WithoutIncludeUsage_HasNoUsageChunk()
    {
        var chunks = CachedResponseReplay.ToChunks(Encoding.UTF8.GetBytes(CacheTestData.Completion), includeUsage: false);

        Assert.All(chunks, c => Assert.Null(c["usage"]));
        Assert.All(chunks, c => Assert.Single(c["choices"]!.AsArray()));
    }

    [Fact]
    public void WriteEvents_Chunks_ServerSentEventsEndingWithDone()
    {
        var chunks = CachedResponseReplay.ToChunks(Encoding.UTF8.GetBytes(CacheTestData.Completion), includeUsage: true);
        var output = new System.Buffers.ArrayBufferWriter<byte>();

        CachedResponseReplay.WriteEvents(chunks, output);

        var text = Encoding.UTF8.GetString(output.WrittenSpan);
        var events = text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(chunks.Count + 1, events.Length);
        Assert.All(events, e => Assert.StartsWith("data: ", e));
        Assert.Equal("data: [DONE]", events[^1]);
        Assert.EndsWith("\n\n", text);
    }
}
