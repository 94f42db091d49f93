using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using LlmProxy.Pipeline;
using LlmProxy.Providers;
using LlmProxy.Providers.Bedrock;
using Xunit;

namespace LlmProxy.Tests.Providers.Bedrock;

public partial class ConverseStreamTranslatorTests
{
    private const string StreamRequest = """{"model":"claude","stream":true,"messages":[{"role":"user","content":"Hi"}]}""";
    private const string StreamRequestWithUsage = """{"model":"claude","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hi"}]}""";

    private static byte[] Ev(string type, string json) => AwsSdkEventStream.Event(type, json);

    private static readonly byte[] MessageStart = Ev("messageStart", """{"role":"assistant"}""");
    private static readonly byte[] Metadata = Ev("metadata", """{"usage":{"inputTokens":25,"outputTokens":9,"totalTokens":34},"metrics":{"latencyMs":420}}""");

    private static byte[] Text(int block, string text) =>
        Ev("contentBlockDelta", new JsonObject { ["contentBlockIndex"] = block, ["delta"] = new JsonObject { ["text"] = text } }.ToJsonString());
    private static byte[] ToolStart(int block, string id, string name) =>
        Ev("contentBlockStart", new JsonObject
        {
            ["contentBlockIndex"] = block,
            ["start"] = new JsonObject { ["toolUse"] = new JsonObject { ["toolUseId"] = id, ["name"] = name } },
        }.ToJsonString());
    private static byte[] ToolInput(int block, string fragment) =>
        Ev("contentBlockDelta", new JsonObject { ["contentBlockIndex"] = block, ["delta"] = new JsonObject { ["toolUse"] = new JsonObject { ["input"] = fragment } } }.ToJsonString());
    private static byte[] BlockStop(int block) => Ev("contentBlockStop", $$"""{"contentBlockIndex":{{block}}}""");
    private static byte[] Stop(string reason) => Ev("messageStop", $$"""{"stopReason":"{{reason}}"}""");

    /// <summary>Text, then two tool calls whose arguments arrive in many small fragments, then usage.</summary>
    private static byte[] ToolStream()
    {
        var parts = new List<byte[]> { MessageStart, Text(0, "Let me "), Text(0, "check both."), BlockStop(0), ToolStart(1, "tooluse_paris", "get_weather") };
        foreach (var fragment in Fragments("""{"city": "Paris", "units": "celsius"}""", 3))
        {
            parts.Add(ToolInput(1, fragment));
        }
        parts.Add(BlockStop(1));
        parts.Add(ToolStart(2, "tooluse_oslo", "get_weather"));
        foreach (var fragment in Fragments("""{"city": "Oslo", "note": "ünïcødé \"quoted\""}""", 1))
        {
            parts.Add(ToolInput(2, fragment));
        }
        parts.Add(BlockStop(2));
        parts.Add(Stop("tool_use"));
        parts.Add(Metadata);
        return AwsEventStreamTests.Concat([.. parts]);
    }

    private static IEnumerable<string> Fragments(string text, int size)
    {
        for (var i = 0; i < text.Length; i += size)
        {
            yield return text.Substring(i, Math.Min(size, text.Length - i));
        }
    }

    private static RecordingSink Run(string requestJson, byte[] body, IEnumerable<int>? splits = null, bool complete = true)
    {
        var translator = BedrockTest.Translator(requestJson).CreateStreamTranslator();
        var sink = new RecordingSink();
        var offset = 0;
        foreach (var size in splits ?? [body.Length])
        {
            if (offset >= body.Length)
            {
                break;
            }
            var take = Math.Min(size, body.Length - offset);
            translator.Process(body.AsSpan(offset, take), sink);
            offset += take;
        }
        if (offset < body.Length)
        {
            translator.Process(body.AsSpan(offset), sink);
        }
        if (complete)
        {
            translator.Complete(sink);
        }
        return sink;
    }

    /// <summary>The delta and finish reason of each chunk (or its usage, for the usage chunk), after checking the chunk envelope.</summary>
    private static List<JsonNode> Deltas(RecordingSink sink, bool includeUsage)
    {
        var ids = new HashSet<string>();
        var result = new List<JsonNode>();
        foreach (var chunk in sink.Chunks)
        {
            ids.Add(chunk["id"]!.GetValue<string>());
            Assert.Equal("chat.completion.chunk", chunk["object"]!.GetValue<string>());
            Assert.Equal(1735787045, chunk["created"]!.GetValue<long>());
            Assert.Equal("claude", chunk["model"]!.GetValue<string>());
            var choices = chunk["choices"]!.AsArray();
            if (choices.Count == 0)
            {
                Assert.True(includeUsage, "a usage chunk was sent to a client that did not ask for it");
                result.Add(new JsonObject { ["usage"] = chunk["usage"]!.DeepClone() });
                continue;
            }
            Assert.Equal(includeUsage, chunk.ContainsKey("usage"));
            if (includeUsage)
            {
                Assert.Null(chunk["usage"]);
            }
            var choice = choices.Single()!.AsObject();
            Assert.Equal(0, choice["index"]!.GetValue<int>());
            Assert.True(choice.ContainsKey("logprobs") && choice["logprobs"] is null);
            result.Add(new JsonObject { ["delta"] = choice["delta"]!.DeepClone(), ["finish_reason"] = choice["finish_reason"]?.DeepClone() });
        }
        Assert.True(ids.Count <= 1, "the chunk id changed within one stream");
        Assert.All(ids, id => Assert.Matches("^chatcmpl-[A-Za-z0-9]{29}$", id));
        return result;
    }

    private static void AssertDeltas(string expected, RecordingSink sink, bool includeUsage) =>
        BedrockTest.JsonEqual(BedrockTest.Parse(expected), new JsonArray([.. Deltas(sink, includeUsage)]));

    [Fact]
    public void Process_TextStreamWithoutIncludeUsage_EmitsRoleTextAndFinishButReportsUsage()
    {
        var body = AwsEventStreamTests.Concat(MessageStart, Text(0, "Hel"), Text(0, "lo!"), BlockStop(0), Stop("end_turn"), Metadata);

        var sink = Run(StreamRequest, body);

        AssertDeltas("""
            [{"delta":{"role":"assistant","content":""},"finish_reason":null},
             {"delta":{"content":"Hel"},"finish_reason":null},
             {"delta":{"content":"lo!"},"finish_reason":null},
             {"delta":{},"finish_reason":"stop"}]
            """, sink, includeUsage: false);
        Assert.Null(sink.ErrorSent);
        Assert.Equal([new TokenUsage(25, 9, 34)], sink.Usages);
    }

    [Fact]
    public void Process_TextStreamWithIncludeUsage_EndsWithUsageChunkAndNullUsageBefore()
    {
        var body = AwsEventStreamTests.Concat(MessageStart, Text(0, "Hi"), BlockStop(0), Stop("end_turn"), Metadata);

        var sink = Run(StreamRequestWithUsage, body);

        AssertDeltas("""
            [{"delta":{"role":"assistant","content":""},"finish_reason":null},
             {"delta":{"content":"Hi"},"finish_reason":null},
             {"delta":{},"finish_reason":"stop"},
             {"usage":{"prompt_tokens":25,"completion_tokens":9,"total_tokens":34}}]
            """, sink, includeUsage: true);
        Assert.Equal([new TokenUsage(25, 9, 34)], sink.Usages);
    }

    [Fact]
    public void Process_MetadataBeforeMessageStop_UsageChunkStillLast()
    {
        var body = AwsEventStreamTests.Concat(MessageStart, Text(0, "Hi"), Metadata, Stop("max_tokens"));

        var sink = Run(StreamRequestWithUsage, body);

        var deltas = Deltas(sink, includeUsage: true);
        Assert.Equal("length", deltas[^2]["finish_reason"]!.GetValue<string>());
        Assert.NotNull(deltas[^1]["usage"]);
        Assert.Null(sink.ErrorSent);
    }

    [Fact]
    public void Process_ParallelToolCallsWithFragmentedArguments_EmitsEveryFragmentUnderItsToolIndex()
    {
        var sink = Run(StreamRequest, ToolStream());

        var deltas = Deltas(sink, includeUsage: false);
        Assert.Null(sink.ErrorSent);
        BedrockTest.JsonEqual(BedrockTest.Parse("""
            [{"delta":{"role":"assistant","content":""},"finish_reason":null},
             {"delta":{"content":"Let me "},"finish_reason":null},
             {"delta":{"content":"check both."},"finish_reason":null},
             {"delta":{"tool_calls":[{"index":0,"id":"tooluse_paris","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]
            """), new JsonArray([.. deltas.Take(4)]));
        Assert.Equal("tool_calls", deltas[^1]["finish_reason"]!.GetValue<string>());

        // Reassemble as an OpenAI client does: concatenate argument fragments per tool index.
        var arguments = new SortedDictionary<int, string>();
        var ids = new Dictionary<int, string>();
        foreach (var delta in deltas)
        {
            if (delta["delta"]?["tool_calls"] is JsonArray calls)
            {
                var call = Assert.Single(calls)!;
                var index = call["index"]!.GetValue<int>();
                if (call["id"] is { } id)
                {
                    ids[index] = id.GetValue<string>();
                }
                arguments[index] = arguments.GetValueOrDefault(index, "") + call["function"]!["arguments"]!.GetValue<string>();
            }
        }
        Assert.Equal(new Dictionary<int, string> { [0] = "tooluse_paris", [1] = "tooluse_oslo" }, ids);
        Assert.Equal("""{"city": "Paris", "units": "celsius"}""", arguments[0]);
        Assert.Equal("""{"city": "Oslo", "note": "ünïcødé \"quoted\""}""", arguments[1]);
    }

    [Fact]
    public void Process_SplitAtEveryByteOrRandomly_ProducesIdenticalOutput()
    {
        var body = ToolStream();
        var whole = Normalize(Run(StreamRequestWithUsage, body));
        Assert.Contains(whole, e => e.Contains("\"usage\":{\"prompt_tokens\""));

        Assert.Equal(whole, Normalize(Run(StreamRequestWithUsage, body, Enumerable.Repeat(1, body.Length))));
        var random = new Random(20250102);
        for (var round = 0; round < 50; round++)
        {
            var splits = Enumerable.Range(0, body.Length).Select(_ => random.Next(1, 64)).ToArray();
            Assert.Equal(whole, Normalize(Run(StreamRequestWithUsage, body, splits)));
        }
    }

    [Fact]
    public void Process_EverySingleSplitPoint_ProducesIdenticalOutput()
    {
        var body = AwsEventStreamTests.Concat(MessageStart, ToolStart(0, "t", "f"), ToolInput(0, "{\"a\""), ToolInput(0, ":1}"), Stop("tool_use"), Metadata);
        var whole = Normalize(Run(StreamRequest, body));

        for (var split = 1; split < body.Length; split++)
        {
            Assert.Equal(whole, Normalize(Run(StreamRequest, body, [split, body.Length])));
        }
    }

    [Theory]
    [InlineData("end_turn", "stop")]
    [InlineData("stop_sequence", "stop")]
    [InlineData("max_tokens", "length")]
    [InlineData("tool_use", "tool_calls")]
    [InlineData("guardrail_intervened", "content_filter")]
    [InlineData("content_filtered", "content_filter")]
    public void Process_StopReason_FinishChunkCarriesFinishReason(string stopReason, string finishReason)
    {
        var sink = Run(StreamRequest, AwsEventStreamTests.Concat(MessageStart, Text(0, "x"), Stop(stopReason), Metadata));

        var last = Deltas(sink, includeUsage: false)[^1];
        BedrockTest.JsonEqual(BedrockTest.Parse($$"""{"delta":{},"finish_reason":"{{finishReason}}"}"""), last);
    }

    public static TheoryData<string, string, string, string?> StreamExceptions => new()
    {
        { "throttlingException", """{"message":"Too many tokens, please wait before trying again."}""", "rate_limit_exceeded", null },
        { "modelStreamErrorException", """{"message":"Model stream error","originalStatusCode":500}""", "upstream_error", null },
        { "internalServerException", """{"message":"boom"}""", "upstream_error", null },
        { "serviceUnavailableException", """{"message":"try later"}""", "upstream_unavailable", null },
        { "validationException", """{"message":"Input is too long for requested model."}""", "invalid_request_error", "Input is too long for requested model." },
    };

    [Theory]
    [MemberData(nameof(StreamExceptions))]
    public void Process_ExceptionEventMidStream_SendsOneErrorAndNothingMore(string exceptionType, string payload, string codeOrType, string? message)
    {
        var body = AwsEventStreamTests.Concat(MessageStart, Text(0, "partial"), AwsSdkEventStream.Exception(exceptionType, payload),
            Text(0, "after the error"), Stop("end_turn"), Metadata);

        var sink = Run(StreamRequest, body);

        Assert.Equal(2, sink.Chunks.Count); // role, "partial"
        var error = Assert.IsType<global::LlmProxy.OpenAi.OpenAiError>(sink.ErrorSent);
        Assert.Contains(codeOrType, new[] { error.Code, error.Type });
        Assert.Equal("error:", sink.Events[^1][..6]);
        if (message is not null)
        {
            Assert.Equal(message, error.Message);
        }
        else
        {
            Assert.Contains("bedrock-test", error.Message);
            Assert.DoesNotContain("boom", error.Message);
        }
        Assert.Empty(sink.Usages);
    }

    [Fact]
    public void Process_ExceptionBeforeAnyEvent_SendsOnlyTheError()
    {
        var sink = Run(StreamRequest, AwsSdkEventStream.Exception("throttlingException", """{"message":"slow down"}"""));

        Assert.Empty(sink.Chunks);
        Assert.Equal("rate_limit_exceeded", sink.ErrorSent!.Code);
    }

    [Fact]
    public void Process_ErrorMessageType_SendsError()
    {
        var body = AwsEventStreamTests.Concat(MessageStart,
            AwsSdkEventStream.Encode([(":message-type", "error"), (":error-code", "InternalFailure"), (":error-message", "oops")], ""));

        var sink = Run(StreamRequest, body);

        Assert.Equal("upstream_error", sink.ErrorSent!.Type);
        Assert.Contains("InternalFailure", sink.ErrorSent.Message);
    }

    public static TheoryData<string, int> Truncations => new()
    {
        { "no messageStop", 4 },
        { "messageStop without metadata", 5 },
        { "nothing at all", 0 },
    };

    [Theory]
    [MemberData(nameof(Truncations))]
    public void Complete_BeforeMessageStopAndMetadata_SendsTruncationError(string what, int events)
    {
        byte[][] all = [MessageStart, Text(0, "a"), Text(0, "b"), BlockStop(0), Stop("end_turn"), Metadata];

        var sink = Run(StreamRequest, AwsEventStreamTests.Concat(all.Take(events).ToArray()));

        Assert.True(sink.ErrorSent is not null, what);
        Assert.Equal("upstream_stream_truncated", sink.ErrorSent.Code);
    }

    [Fact]
    public void Complete_BodyCutInsideAFrame_SendsTruncationError()
    {
        var body = AwsEventStreamTests.Concat(MessageStart, Text(0, "a"), Stop("end_turn"));

        var sink = Run(StreamRequest, body[..^5]); // cut inside messageStop

        Assert.Equal("upstream_stream_truncated", sink.ErrorSent!.Code);
        Assert.DoesNotContain(sink.Chunks, c => c["choices"]![0]?["finish_reason"] is JsonValue);
    }

    [Fact]
    public void Complete_AfterMessageStopAndMetadata_SendsNothingMore()
    {
        var translator = BedrockTest.Translator(StreamRequest).CreateStreamTranslator();
        var sink = new RecordingSink();
        translator.Process(AwsEventStreamTests.Concat(MessageStart, Text(0, "a"), Stop("end_turn"), Metadata), sink);
        var before = sink.Events.Count;

        translator.Complete(sink);
        translator.Process(Text(0, "late"), sink);

        Assert.Equal(before, sink.Events.Count);
        Assert.Null(sink.ErrorSent);
    }

    [Fact]
    public void Process_CorruptedChecksum_SendsProtocolError()
    {
        var text = Text(0, "hello");
        text[^1] ^= 0xFF;

        var sink = Run(StreamRequest, AwsEventStreamTests.Concat(MessageStart, text, Stop("end_turn"), Metadata));

        Assert.Single(sink.Chunks); // the role chunk only
        Assert.Equal("upstream_protocol_error", sink.ErrorSent!.Code);
        Assert.Contains("checksum", sink.ErrorSent.Message);
    }

    [Fact]
    public void Process_GarbageAfterExceptionOrAfterTheEnd_ChangesNothing()
    {
        byte[] garbage = [0, 0, 0, 99, 1, 2, 3, 4, 5, 6, 7, 8, 9];

        var failed = Run(StreamRequest, AwsEventStreamTests.Concat(MessageStart, AwsSdkEventStream.Exception("throttlingException", "{}"), garbage));
        var completed = Run(StreamRequest, AwsEventStreamTests.Concat(MessageStart, Stop("end_turn"), Metadata, garbage));

        Assert.Equal("rate_limit_exceeded", failed.ErrorSent!.Code); // one error, the first (RecordingSink rejects a second)
        Assert.Null(completed.ErrorSent);
    }

    [Fact]
    public void Process_ToolInputForBlockThatDidNotStartAsTool_SendsProtocolError()
    {
        var sink = Run(StreamRequest, AwsEventStreamTests.Concat(MessageStart, ToolInput(3, "{}"), Stop("end_turn"), Metadata));

        Assert.Equal("upstream_protocol_error", sink.ErrorSent!.Code);
    }

    [Fact]
    public void Process_MalformedEventPayload_SendsProtocolError()
    {
        var sink = Run(StreamRequest, AwsEventStreamTests.Concat(MessageStart, Ev("contentBlockDelta", "{not json"), Stop("end_turn"), Metadata));

        Assert.Equal("upstream_protocol_error", sink.ErrorSent!.Code);
    }

    [Fact]
    public void Process_UnknownEventsAndBlocks_AreSkipped()
    {
        var body = AwsEventStreamTests.Concat(MessageStart,
            Ev("contentBlockDelta", """{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"thinking"}}}"""),
            Ev("someFutureEvent", """{"x":1}"""),
            Text(1, "answer"), Stop("end_turn"), Metadata);

        var sink = Run(StreamRequest, body);

        Assert.Null(sink.ErrorSent);
        AssertDeltas("""
            [{"delta":{"role":"assistant","content":""},"finish_reason":null},
             {"delta":{"content":"answer"},"finish_reason":null},
             {"delta":{},"finish_reason":"stop"}]
            """, sink, includeUsage: false);
    }

    [Fact]
    public void Process_CacheCountersInMetadata_UsageInOpenAiTerms()
    {
        var metadata = Ev("metadata", """{"usage":{"inputTokens":5,"outputTokens":2,"totalTokens":57,"cacheReadInputTokens":50},"metrics":{"latencyMs":1}}""");

        var sink = Run(StreamRequestWithUsage, AwsEventStreamTests.Concat(MessageStart, Text(0, "a"), Stop("end_turn"), metadata));

        Assert.Equal([new TokenUsage(55, 2, 57, 50)], sink.Usages);
        BedrockTest.JsonEqual(BedrockTest.Parse("""{"usage":{"prompt_tokens":55,"completion_tokens":2,"total_tokens":57,"prompt_tokens_details":{"cached_tokens":50}}}"""),
            Deltas(sink, includeUsage: true)[^1]);
    }

    private static List<string> Normalize(RecordingSink sink) =>
        sink.Events.Select(e => CompletionId().Replace(e, "chatcmpl-X")).ToList();

    [GeneratedRegex("chatcmpl-[A-Za-z0-9]{29}")]
    private static partial Regex CompletionId();
}
