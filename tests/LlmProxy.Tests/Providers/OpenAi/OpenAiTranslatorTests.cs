using System.Text;
using System.Text.Json.Nodes;
using LlmProxy.Configuration;
using LlmProxy.OpenAi;
using LlmProxy.Pipeline;
using LlmProxy.Providers;
using LlmProxy.Providers.OpenAi;
using LlmProxy.Routing;

namespace LlmProxy.Tests.Providers.OpenAi;

public sealed class OpenAiTranslatorTests
{
    private static ChatRequest Request(string json)
    {
        Assert.True(ChatRequestParser.TryParse(Encoding.UTF8.GetBytes(json), out var request, out _));
        return request!;
    }

    private static Deployment Deployment()
    {
        var options = new LlmProxyOptions
        {
            Tenants = { ["t"] = new TenantOptions { Keys = { ["k"] = LlmProxy.Tenancy.ApiKeyHasher.Hash("x") } } },
            Models = { ["client-model"] = new ModelRouteOptions { Deployments = { ["d1"] = new DeploymentOptions { Provider = "openai", BaseUrl = "http://127.0.0.1:9/v1", UpstreamModel = "upstream-model" } } } },
        };
        return new GatewayConfigurationBuilder(new ProviderRegistry([new OpenAiProvider()])).Build(options, out _)!.Deployments["d1"];
    }

    private static JsonObject Translate(string json)
    {
        var upstream = new OpenAiTranslator(Request(json), Deployment()).TranslateRequest();
        Assert.Equal("/chat/completions", upstream.RelativePath);
        return JsonNode.Parse(upstream.Body.Span)!.AsObject();
    }

    [Fact]
    public void TranslateRequest_RewritesModelAndKeepsEveryOtherParameter()
    {
        var body = Translate("""{"model":"client-model","messages":[{"role":"user","content":"hi"}],"temperature":0.5,"x_vendor_flag":{"a":[1,null]}}""");

        Assert.Equal("upstream-model", body["model"]!.GetValue<string>());
        Assert.Equal(0.5, body["temperature"]!.GetValue<double>());
        Assert.Equal("""{"a":[1,null]}""", body["x_vendor_flag"]!.ToJsonString());
        Assert.Null(body["stream_options"]);
    }

    [Fact]
    public void TranslateRequest_Stream_AlwaysAsksUpstreamForUsage()
    {
        var body = Translate("""{"model":"client-model","messages":[{"role":"user","content":"hi"}],"stream":true}""");

        Assert.True(body["stream_options"]!["include_usage"]!.GetValue<bool>());
    }

    [Fact]
    public void TranslateRequest_StreamWithClientOptions_KeepsThemAndForcesUsage()
    {
        var body = Translate("""{"model":"client-model","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":false,"other":1}}""");

        Assert.True(body["stream_options"]!["include_usage"]!.GetValue<bool>());
        Assert.Equal(1, body["stream_options"]!["other"]!.GetValue<int>());
    }

    [Fact]
    public void TranslateResponse_SetsClientModelAndReadsUsage()
    {
        var translator = new OpenAiTranslator(Request("""{"model":"client-model","messages":[{"role":"user","content":"hi"}]}"""), Deployment());
        var upstream = """{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"upstream-model-2024","choices":[{"index":0,"message":{"role":"assistant","content":"yo"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4,"prompt_tokens_details":{"cached_tokens":2}}}""";

        var result = translator.TranslateResponse(Encoding.UTF8.GetBytes(upstream));

        var body = JsonNode.Parse(result.Body)!;
        Assert.Equal("client-model", body["model"]!.GetValue<string>());
        Assert.Equal("yo", body["choices"]![0]!["message"]!["content"]!.GetValue<string>());
        Assert.Equal(new TokenUsage(3, 1, 4, 2), result.Usage);
    }

    [Fact]
    public void TranslateResponse_KeepsTheUpstreamBytesExceptTheModel()
    {
        var translator = new OpenAiTranslator(Request("""{"model":"client-model","messages":[{"role":"user","content":"hi"}]}"""), Deployment());
        var upstream = "{\"id\": \"chatcmpl-1\",\n \"model\": \"upstream-model-2024\",\n \"choices\": [{\"message\": {\"content\": \"Grüße <b> & 😀\"}}]}\n";

        var result = translator.TranslateResponse(Encoding.UTF8.GetBytes(upstream));

        Assert.Equal(upstream.Replace("upstream-model-2024", "client-model"), Encoding.UTF8.GetString(result.Body));
        Assert.Null(result.Usage);
    }

    [Theory]
    [InlineData("""{"id":"c"}""", """{"id":"c","model":"client-model"}""")]
    [InlineData("""{ }""", """{ "model":"client-model"}""")]
    public void TranslateResponse_NoModel_AddsTheClientModel(string upstream, string expected)
    {
        var translator = new OpenAiTranslator(Request("""{"model":"client-model","messages":[{"role":"user","content":"hi"}]}"""), Deployment());

        Assert.Equal(expected, Encoding.UTF8.GetString(translator.TranslateResponse(Encoding.UTF8.GetBytes(upstream)).Body));
    }

    [Theory]
    [InlineData("""{"model":"m"} {"model":"m"}""")]
    [InlineData("""{"model":"a","model":"b"}""")]
    [InlineData("""[{"model":"m"}]""")]
    [InlineData("""{"model":"m",}""")]
    [InlineData("")]
    public void TranslateResponse_NotOneCompletionObject_ThrowsProtocolException(string upstream)
    {
        var translator = new OpenAiTranslator(Request("""{"model":"client-model","messages":[{"role":"user","content":"hi"}]}"""), Deployment());

        Assert.Throws<UpstreamProtocolException>(() => translator.TranslateResponse(Encoding.UTF8.GetBytes(upstream)));
    }

    [Theory]
    [InlineData("""{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4,"prompt_tokens_details":{"cached_tokens":2,"audio_tokens":0}}""")]
    [InlineData("""{"completion_tokens_details":{"reasoning_tokens":5},"total_tokens":9,"prompt_tokens":4,"completion_tokens":5}""")]
    [InlineData("""{"prompt_tokens":3,"completion_tokens":1}""")]
    [InlineData("""{"prompt_tokens":"3","completion_tokens":1.5,"total_tokens":99999999999,"prompt_tokens_details":null}""")]
    [InlineData("""{"prompt_tokens_details":{"cached_tokens":"x"}}""")]
    [InlineData("""{}""")]
    [InlineData("null")]
    [InlineData("[1,2]")]
    public void TranslateResponse_Usage_ReadsAsTheUsageOfTheParsedCompletion(string usage)
    {
        var translator = new OpenAiTranslator(Request("""{"model":"client-model","messages":[{"role":"user","content":"hi"}]}"""), Deployment());
        var upstream = $$"""{"id":"c","usage":{{usage}},"model":"u"}""";

        var result = translator.TranslateResponse(Encoding.UTF8.GetBytes(upstream));

        Assert.Equal(OpenAiUsage.Read(JsonNode.Parse(upstream)!["usage"]), result.Usage);
    }

    [Fact]
    public void TranslateResponse_NotJson_ThrowsProtocolException()
    {
        var translator = new OpenAiTranslator(Request("""{"model":"client-model","messages":[{"role":"user","content":"hi"}]}"""), Deployment());

        Assert.Throws<UpstreamProtocolException>(() => translator.TranslateResponse("<html>"u8));
    }

    private const string UpstreamStream =
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"upstream-model\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}],\"usage\":null}\n\n" +
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"upstream-model\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}],\"usage\":null}\n\n" +
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"upstream-model\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n" +
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"upstream-model\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n" +
        "data: [DONE]\n\n";

    private sealed class RecordingSink : IChatStreamSink
    {
        public List<JsonObject> Chunks { get; } = [];
        public List<OpenAiError> Errors { get; } = [];
        public TokenUsage? Usage { get; private set; }
        /// <summary>Each chunk as the client receives it: its JSON text.</summary>
        public List<string> Texts { get; } = [];
        public void Chunk(ReadOnlySpan<byte> chunkJson)
        {
            Texts.Add(Encoding.UTF8.GetString(chunkJson));
            Chunks.Add(JsonNode.Parse(chunkJson)!.AsObject());
        }
        public void Error(OpenAiError error) => Errors.Add(error);
        void IChatStreamSink.Usage(TokenUsage usage) => Usage = usage;
    }

    private static RecordingSink Stream(string requestJson, string upstream, bool complete = true)
    {
        var translator = new OpenAiTranslator(Request(requestJson), Deployment()).CreateStreamTranslator();
        var sink = new RecordingSink();
        foreach (var b in Encoding.UTF8.GetBytes(upstream))
        {
            translator.Process([b], sink);
        }
        if (complete)
        {
            translator.Complete(sink);
        }
        return sink;
    }

    [Fact]
    public void Stream_ClientDidNotAskForUsage_HidesUsageButReportsIt()
    {
        var sink = Stream("""{"model":"client-model","messages":[{"role":"user","content":"hi"}],"stream":true}""", UpstreamStream);

        Assert.Equal(3, sink.Chunks.Count);
        Assert.All(sink.Chunks, c => Assert.False(c.ContainsKey("usage")));
        Assert.All(sink.Chunks, c => Assert.Equal("client-model", c["model"]!.GetValue<string>()));
        Assert.Equal(new TokenUsage(5, 2, 7), sink.Usage);
        Assert.Empty(sink.Errors);
    }

    [Fact]
    public void Stream_EventsSplitAcrossReads_EachChunkIsTheUpstreamsBytesWithTheModelRewritten()
    {
        // Fed one byte at a time (Stream does), so events, escapes and multi-byte characters are all split between reads.
        const string upstream =
            "data: {\"id\":\"c\", \"model\":\"upstream-model\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"h\u00e9 \\\"model\\\" 名前\"}}],\"usage\":null}\r\n\r\n" +
            ": keep-alive\n\n" +
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"x\":{\"model\":\"upstream-model\"}}\n\n" +
            "data: [DONE]\n\n";

        var sink = Stream("""{"model":"client-model","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}""", upstream);

        Assert.Equal(
            [
                "{\"id\":\"c\", \"model\":\"client-model\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"h\u00e9 \\\"model\\\" 名前\"}}],\"usage\":null}",
                "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"x\":{\"model\":\"upstream-model\"},\"model\":\"client-model\"}",
            ],
            sink.Texts);
        Assert.Equal("hé \"model\" 名前", sink.Chunks[0]["choices"]![0]!["delta"]!["content"]!.GetValue<string>());
        Assert.Empty(sink.Errors);
    }

    [Fact]
    public void Stream_MalformedEvent_BecomesTerminalProtocolError()
    {
        var sink = Stream("""{"model":"client-model","messages":[{"role":"user","content":"hi"}],"stream":true}""",
            "data: {\"model\":\"upstream-model\",\"choices\":[]}\n\ndata: {\"choices\":[}\n\ndata: {\"choices\":[]}\n\ndata: [DONE]\n\n");

        Assert.Single(sink.Chunks);
        Assert.Equal("upstream_protocol_error", Assert.Single(sink.Errors).Code);
    }

    [Fact]
    public void Stream_ClientAskedForUsage_ForwardsUsageChunk()
    {
        var sink = Stream("""{"model":"client-model","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}""", UpstreamStream);

        Assert.Equal(4, sink.Chunks.Count);
        Assert.Equal(7, sink.Chunks[3]["usage"]!["total_tokens"]!.GetValue<int>());
        Assert.Equal(new TokenUsage(5, 2, 7), sink.Usage);
    }

    [Fact]
    public void Stream_EndsWithoutDone_ReportsTruncation()
    {
        var truncated = UpstreamStream[..UpstreamStream.IndexOf("data: [DONE]", StringComparison.Ordinal)];
        var sink = Stream("""{"model":"client-model","messages":[{"role":"user","content":"hi"}],"stream":true}""", truncated[..(truncated.Length / 2)]);

        var error = Assert.Single(sink.Errors);
        Assert.Equal("upstream_stream_truncated", error.Code);
    }

    [Fact]
    public void Stream_UpstreamErrorEvent_BecomesTerminalError()
    {
        var upstream = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"late\"}}]}\n\n";
        var sink = Stream("""{"model":"client-model","messages":[{"role":"user","content":"hi"}],"stream":true}""", upstream);

        Assert.Single(sink.Chunks);
        var error = Assert.Single(sink.Errors);
        Assert.Contains("overloaded", error.Message);
        Assert.Contains("d1", error.Message);
    }

    [Theory]
    [InlineData(400, 400, false, "invalid_value")]
    [InlineData(401, 502, true, "upstream_authentication_failed")]
    [InlineData(404, 404, false, "invalid_value")]
    [InlineData(429, 429, true, "rate_limit_exceeded")]
    [InlineData(500, 502, true, "upstream_error")]
    [InlineData(503, 503, true, "upstream_unavailable")]
    [InlineData(504, 504, true, "upstream_timeout")]
    public void TranslateError_MapsStatus(int upstreamStatus, int clientStatus, bool retryable, string code)
    {
        var translator = new OpenAiTranslator(Request("""{"model":"client-model","messages":[{"role":"user","content":"hi"}]}"""), Deployment());
        using var response = new HttpResponseMessage((System.Net.HttpStatusCode)upstreamStatus);
        response.Headers.TryAddWithoutValidation("Retry-After", "3");
        var body = """{"error":{"message":"Incorrect API key provided: sk-abc***xyz","type":"invalid_request_error","param":"messages","code":"invalid_value"}}""";

        var failure = translator.TranslateError(response, Encoding.UTF8.GetBytes(body));

        Assert.Equal(clientStatus, failure.ClientStatus);
        Assert.Equal(retryable, failure.IsRetryable);
        Assert.Equal(code, failure.Error.Code);
        if (upstreamStatus is 401)
        {
            Assert.DoesNotContain("sk-", failure.Error.Message);
        }
        if (upstreamStatus is 429)
        {
            Assert.Equal(TimeSpan.FromSeconds(3), failure.RetryAfter);
        }
    }
}
