using System.Text;
using System.Text.Json.Nodes;
using LlmProxy.Pipeline;
using LlmProxy.Providers;
using Xunit;

namespace LlmProxy.Tests.Providers.Bedrock;

public class ConverseResponseTranslationTests
{
    /// <summary>Converse response in, chat.completion out (the id is normalized to <c>chatcmpl-test</c>, created is the fake clock's).</summary>
    private static readonly Dictionary<string, (string Converse, string OpenAi)> Cases = new()
    {
        ["text blocks are concatenated"] = (
            """
            {"output":{"message":{"role":"assistant","content":[{"text":"Hello, "},{"text":"world."}]}},
             "stopReason":"end_turn","usage":{"inputTokens":12,"outputTokens":4,"totalTokens":16},"metrics":{"latencyMs":321}}
            """,
            """
            {"id":"chatcmpl-test","object":"chat.completion","created":1735787045,"model":"claude",
             "choices":[{"index":0,"message":{"role":"assistant","content":"Hello, world.","refusal":null},"logprobs":null,"finish_reason":"stop"}],
             "usage":{"prompt_tokens":12,"completion_tokens":4,"total_tokens":16}}
            """),

        ["only tool calls leave content null"] = (
            """
            {"output":{"message":{"role":"assistant","content":[
               {"toolUse":{"toolUseId":"tooluse_a","name":"get_weather","input":{"city":"Paris","units":{"temp":"C"}}}},
               {"toolUse":{"toolUseId":"tooluse_b","name":"get_time","input":{}}}]}},
             "stopReason":"tool_use","usage":{"inputTokens":50,"outputTokens":30,"totalTokens":80},"metrics":{"latencyMs":1}}
            """,
            """
            {"id":"chatcmpl-test","object":"chat.completion","created":1735787045,"model":"claude",
             "choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":null,"tool_calls":[
                {"id":"tooluse_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\",\"units\":{\"temp\":\"C\"}}"}},
                {"id":"tooluse_b","type":"function","function":{"name":"get_time","arguments":"{}"}}]},
               "logprobs":null,"finish_reason":"tool_calls"}],
             "usage":{"prompt_tokens":50,"completion_tokens":30,"total_tokens":80}}
            """),

        ["text and tool calls together"] = (
            """
            {"output":{"message":{"role":"assistant","content":[{"text":"Checking."},{"toolUse":{"toolUseId":"t1","name":"f","input":{"a":1}}}]}},
             "stopReason":"tool_use","usage":{"inputTokens":1,"outputTokens":2,"totalTokens":3},"metrics":{"latencyMs":1}}
            """,
            """
            {"id":"chatcmpl-test","object":"chat.completion","created":1735787045,"model":"claude",
             "choices":[{"index":0,"message":{"role":"assistant","content":"Checking.","refusal":null,"tool_calls":[
                {"id":"t1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],
             "usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}
            """),

        ["prompt cache counters join prompt tokens"] = (
            """
            {"output":{"message":{"role":"assistant","content":[{"text":"ok"}]}},"stopReason":"end_turn",
             "usage":{"inputTokens":10,"outputTokens":5,"totalTokens":1215,"cacheReadInputTokens":1000,"cacheWriteInputTokens":200},"metrics":{"latencyMs":1}}
            """,
            """
            {"id":"chatcmpl-test","object":"chat.completion","created":1735787045,"model":"claude",
             "choices":[{"index":0,"message":{"role":"assistant","content":"ok","refusal":null},"logprobs":null,"finish_reason":"stop"}],
             "usage":{"prompt_tokens":1210,"completion_tokens":5,"total_tokens":1215,"prompt_tokens_details":{"cached_tokens":1000}}}
            """),

        ["unknown blocks are skipped and empty output is an empty string"] = (
            """
            {"output":{"message":{"role":"assistant","content":[{"reasoningContent":{"reasoningText":{"text":"hmm"}}}]}},"stopReason":"max_tokens",
             "usage":{"inputTokens":3,"outputTokens":1,"totalTokens":4},"metrics":{"latencyMs":1},"additionalModelResponseFields":{"x":1}}
            """,
            """
            {"id":"chatcmpl-test","object":"chat.completion","created":1735787045,"model":"claude",
             "choices":[{"index":0,"message":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":"length"}],
             "usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}
            """),
    };

    public static TheoryData<string> CaseNames => new(Cases.Keys);

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void TranslateResponse_Fixture_ProducesExpectedCompletion(string name)
    {
        var (converse, openAi) = Cases[name];
        var translator = BedrockTest.Translator("""{"model":"claude","messages":[{"role":"user","content":"Hi"}]}""");

        var translated = translator.TranslateResponse(Encoding.UTF8.GetBytes(converse));

        var completion = BedrockTest.NormalizeId((JsonObject)JsonNode.Parse(translated.Body)!);
        BedrockTest.JsonEqual(BedrockTest.Parse(openAi), completion);
        Assert.Equal(global::LlmProxy.OpenAi.OpenAiUsage.Read(completion["usage"]), translated.Usage);
    }

    [Theory]
    [InlineData("end_turn", "stop")]
    [InlineData("stop_sequence", "stop")]
    [InlineData("max_tokens", "length")]
    [InlineData("tool_use", "tool_calls")]
    [InlineData("guardrail_intervened", "content_filter")]
    [InlineData("content_filtered", "content_filter")]
    [InlineData("some_future_reason", "stop")]
    public void TranslateResponse_StopReason_MapsToFinishReason(string stopReason, string finishReason)
    {
        var translator = BedrockTest.Translator("""{"model":"claude","messages":[{"role":"user","content":"Hi"}]}""");
        var body = $$$"""{"output":{"message":{"role":"assistant","content":[{"text":"x"}]}},"stopReason":"{{{stopReason}}}","usage":{"inputTokens":1,"outputTokens":1,"totalTokens":2},"metrics":{"latencyMs":1}}""";

        var translated = translator.TranslateResponse(Encoding.UTF8.GetBytes(body));

        Assert.Equal(finishReason, JsonNode.Parse(translated.Body)!["choices"]![0]!["finish_reason"]!.GetValue<string>());
    }

    [Fact]
    public void TranslateResponse_Usage_ReportedForMetering()
    {
        var translator = BedrockTest.Translator("""{"model":"claude","messages":[{"role":"user","content":"Hi"}]}""");

        var translated = translator.TranslateResponse(Encoding.UTF8.GetBytes(Cases["text blocks are concatenated"].Converse));

        Assert.Equal(new TokenUsage(12, 4, 16), translated.Usage);
    }

    [Theory]
    [InlineData("")]
    [InlineData("not json")]
    [InlineData("[]")]
    [InlineData("""{"stopReason":"end_turn"}""")]
    [InlineData("""{"output":{"message":{"role":"assistant","content":"text"}}}""")]
    public void TranslateResponse_NotAConverseResponse_ThrowsProtocolException(string body)
    {
        var translator = BedrockTest.Translator("""{"model":"claude","messages":[{"role":"user","content":"Hi"}]}""");

        var ex = Assert.Throws<UpstreamProtocolException>(() => translator.TranslateResponse(Encoding.UTF8.GetBytes(body)));

        Assert.Contains("bedrock-test", ex.Message);
    }
}
