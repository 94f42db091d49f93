using System.Net;
using System.Text.Json;
using LlmProxy.Simulator;
using static LlmProxy.Tests.Simulator.BedrockHttp;
using static LlmProxy.Tests.Simulator.SimulatorHttp;
using Xunit;

namespace LlmProxy.Tests.Simulator;

public sealed class BedrockConverseTests : IAsyncLifetime
{
    private SimulatorServer _server = null!;
    private HttpClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        // An OpenAI key is required too, to show it does not get in the way of SigV4-signed Bedrock requests.
        _server = await SimulatorServer.StartAsync(new SimulatorOptions { ExpectedApiKey = "sk-test" }, ct: Ct);
        _client = CreateClient(_server, apiKey: null);
    }

    public async ValueTask DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task Converse_TextPrompt_ReturnsAssistantTextEndTurnUsageAndRequestId()
    {
        using var response = await _client.PostConverseAsync(_server, UserConverse("Hello there"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.True(Guid.TryParse(response.Headers.GetValues("x-amzn-RequestId").Single(), out _));
        var body = await response.ReadJsonAsync();
        Assert.Equal(
            """{"role":"assistant","content":[{"text":"Simulated reply to: Hello there"}]}""",
            body.GetProperty("output").GetProperty("message").GetRawText());
        Assert.Equal("end_turn", body.GetProperty("stopReason").GetString());
        Assert.Equal("""{"inputTokens":5,"outputTokens":5,"totalTokens":10}""", body.GetProperty("usage").GetRawText());
        Assert.True(body.GetProperty("metrics").GetProperty("latencyMs").GetInt64() >= 0);
    }

    [Fact]
    public async Task Converse_InferenceProfileArn_RoutesWithTheEncodedIdAndIsRecorded()
    {
        using var response = await _client.PostConverseAsync(_server, UserConverse("Hello there"), modelId: ProfileArn);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var recorded = _server.Requests.Last!;
        Assert.Equal("POST", recorded.Method);
        Assert.Equal(RawPath(ProfileArn), recorded.Path);
        Assert.StartsWith("AWS4-HMAC-SHA256 Credential=AKIDSIMULATOR/", recorded.Header("Authorization"));
        Assert.Equal(UserConverse("Hello there"), recorded.Body);
    }

    [Fact]
    public async Task Converse_SamePromptAsOpenAi_SameTextAndTokenCounts()
    {
        using var bedrock = await _client.PostConverseAsync(_server, """
            {"system":[{"text":"You are terse."}],"messages":[
              {"role":"user","content":[{"text":"First question"}]},
              {"role":"assistant","content":[{"text":"First answer here"}]},
              {"role":"user","content":[{"text":"Second question please"}]}]}
            """);
        using var openAiClient = CreateClient(_server, apiKey: "sk-test");
        using var openAi = await openAiClient.PostChatAsync("""
            {"model":"gpt-4o-mini","messages":[
              {"role":"system","content":"You are terse."},
              {"role":"user","content":"First question"},
              {"role":"assistant","content":"First answer here"},
              {"role":"user","content":"Second question please"}]}
            """);

        var b = await bedrock.ReadJsonAsync();
        var o = await openAi.ReadJsonAsync();
        Assert.Equal(
            o.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString(),
            b.GetProperty("output").GetProperty("message").GetProperty("content")[0].GetProperty("text").GetString());
        var usage = o.GetProperty("usage");
        Assert.Equal(
            (usage.GetProperty("prompt_tokens").GetInt32(), usage.GetProperty("completion_tokens").GetInt32(), usage.GetProperty("total_tokens").GetInt32()),
            (b.GetProperty("usage").GetProperty("inputTokens").GetInt32(), b.GetProperty("usage").GetProperty("outputTokens").GetInt32(), b.GetProperty("usage").GetProperty("totalTokens").GetInt32()));
    }

    [Theory]
    [InlineData("""{"maxTokens":2}""", "Simulated reply", "max_tokens", 2)]
    [InlineData("""{"stopSequences":["there"]}""", "Simulated reply to: Hello", "stop_sequence", 4)]
    [InlineData("""{"stopSequences":["absent"],"maxTokens":100}""", "Simulated reply to: Hello there", "end_turn", 5)]
    [InlineData("""{"stopSequences":["there"],"maxTokens":2}""", "Simulated reply", "max_tokens", 2)]
    public async Task Converse_InferenceConfig_CutsTheReplyWithTheMatchingStopReason(string inferenceConfig, string text, string stopReason, int outputTokens)
    {
        using var response = await _client.PostConverseAsync(_server, UserConverse("Hello there", ",\"inferenceConfig\":" + inferenceConfig));

        var body = await response.ReadJsonAsync();
        Assert.Equal(text, body.GetProperty("output").GetProperty("message").GetProperty("content")[0].GetProperty("text").GetString());
        Assert.Equal(stopReason, body.GetProperty("stopReason").GetString());
        Assert.Equal(outputTokens, body.GetProperty("usage").GetProperty("outputTokens").GetInt32());
    }

    [Fact]
    public async Task Converse_ToolsOffered_ReturnsToolUseWithSchemaSampleInput()
    {
        using var response = await _client.PostConverseAsync(_server, UserConverse("Weather in Paris?", "," + WeatherToolConfig));

        var body = await response.ReadJsonAsync();
        Assert.Equal("tool_use", body.GetProperty("stopReason").GetString());
        var toolUse = Assert.Single(body.GetProperty("output").GetProperty("message").GetProperty("content").EnumerateArray()).GetProperty("toolUse");
        Assert.Matches("^tooluse_[A-Za-z0-9]{22}$", toolUse.GetProperty("toolUseId").GetString());
        Assert.Equal("get_weather", toolUse.GetProperty("name").GetString());
        Assert.Equal("""{"city":"sample","unit":"celsius","days":1}""", toolUse.GetProperty("input").GetRawText());
        // Output tokens: the tool name and the compact input are one word each, as in the OpenAI mode.
        Assert.Equal(2, body.GetProperty("usage").GetProperty("outputTokens").GetInt32());
    }

    [Theory]
    [InlineData("Use them in parallel", "", new[] { "get_weather", "get_time" })]
    [InlineData("What time is it?", ",\"toolChoice\":{\"tool\":{\"name\":\"get_time\"}}", new[] { "get_time" })]
    [InlineData("Anything", ",\"toolChoice\":{\"any\":{}}", new[] { "get_weather" })]
    public async Task Converse_ToolChoiceAndParallel_PickTheTools(string prompt, string toolChoice, string[] expected)
    {
        var toolConfig = WeatherToolConfig.TrimEnd()[..^1] + toolChoice + "}";
        using var response = await _client.PostConverseAsync(_server, UserConverse(prompt, "," + toolConfig));

        var body = await response.ReadJsonAsync();
        var names = body.GetProperty("output").GetProperty("message").GetProperty("content").EnumerateArray()
            .Select(block => block.GetProperty("toolUse").GetProperty("name").GetString()).ToArray();
        Assert.Equal(expected, names);
    }

    [Fact]
    public async Task Converse_ToolResultsInTheLastTurn_AnswersWithThem()
    {
        using var first = await _client.PostConverseAsync(_server, UserConverse("Weather and time in parallel", "," + WeatherToolConfig));
        var message = (await first.ReadJsonAsync()).GetProperty("output").GetProperty("message");
        var ids = message.GetProperty("content").EnumerateArray().Select(b => b.GetProperty("toolUse").GetProperty("toolUseId").GetString()).ToArray();

        var json = "{" + WeatherToolConfig + ""","messages":[{"role":"user","content":[{"text":"Weather and time in parallel"}]},"""
            + message.GetRawText()
            + """,{"role":"user","content":[{"toolResult":{"toolUseId":"ID1","content":[{"text":"10:30"}]}},"""
            + """{"toolResult":{"toolUseId":"ID0","content":[{"json":{"temp":22}}]}}]}]}""";
        json = json.Replace("ID1", ids[1], StringComparison.Ordinal).Replace("ID0", ids[0], StringComparison.Ordinal);
        using var second = await _client.PostConverseAsync(_server, json);

        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        var body = await second.ReadJsonAsync();
        Assert.Equal("end_turn", body.GetProperty("stopReason").GetString());
        Assert.Equal(
            """Simulated reply using tool results: 10:30; {"temp":22}""",
            body.GetProperty("output").GetProperty("message").GetProperty("content")[0].GetProperty("text").GetString());
    }

    [Theory]
    [InlineData("Tell me [[guardrail]]", "guardrail_intervened", "Sorry, the model cannot answer this question.")]
    [InlineData("Tell me [[content_filtered]]", "content_filtered", "Simulated reply to: Tell me [[content_filtered]]")]
    public async Task Converse_Markers_ForceTheStopReasonsAPromptCannotProduce(string prompt, string stopReason, string text)
    {
        using var response = await _client.PostConverseAsync(_server, UserConverse(prompt, "," + WeatherToolConfig));

        var body = await response.ReadJsonAsync();
        Assert.Equal(stopReason, body.GetProperty("stopReason").GetString());
        Assert.Equal(text, body.GetProperty("output").GetProperty("message").GetProperty("content")[0].GetProperty("text").GetString());
    }

    [Fact]
    public async Task Converse_InvalidConversation_ValidationExceptionShape()
    {
        using var response = await _client.PostConverseAsync(_server, """{"messages":[{"role":"assistant","content":[{"text":"Hi"}]}]}""");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.True(response.Headers.Contains("x-amzn-RequestId"));
        var (type, message) = await response.ReadBedrockErrorAsync();
        Assert.Equal("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/", type);
        Assert.Equal("A conversation must start with a user message. Try again with a conversation that starts with a user message.", message);
    }

    [Fact]
    public async Task Converse_UnknownModel_ResourceNotFound()
    {
        using var response = await _client.PostConverseAsync(_server, UserConverse("hi"), modelId: "unknown.model-v1:0");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.StartsWith("ResourceNotFoundException:", (await response.ReadBedrockErrorAsync()).Type);
    }

    [Fact]
    public async Task Unsigned_MissingAuthenticationToken()
    {
        using var response = await _client.PostAsync(RawPath(ModelId).TrimStart('/'), new StringContent(UserConverse("hi")), Ct);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal(
            ("MissingAuthenticationTokenException:http://internal.amazon.com/coral/com.amazon.coral.service/", "Missing Authentication Token"),
            await response.ReadBedrockErrorAsync());
    }

    [Fact]
    public async Task WrongSecret_InvalidSignatureWithTheExpectedCanonicalRequest()
    {
        using var request = SignedRequest(_server.BaseAddress, RawPath(ProfileArn), UserConverse("hi"), secret: "wrong");
        using var response = await _client.SendAsync(request, Ct);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        var (type, message) = await response.ReadBedrockErrorAsync();
        Assert.StartsWith("InvalidSignatureException:", type);
        Assert.Contains("\n/model/arn%253Aaws%253Abedrock%253Aus-east-1%253A123456789012%253Ainference-profile%252Fus.anthropic", message);
    }

    [Fact]
    public async Task SignedMoreThanFiveMinutesAgo_SignatureExpired()
    {
        using var request = SignedRequest(_server.BaseAddress, RawPath(ModelId), UserConverse("hi"), signedAt: DateTime.UtcNow.AddMinutes(-10));
        using var response = await _client.SendAsync(request, Ct);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        var (type, message) = await response.ReadBedrockErrorAsync();
        Assert.StartsWith("InvalidSignatureException:", type);
        Assert.StartsWith("Signature expired:", message);
    }

    [Fact]
    public async Task UnknownOperation_Bedrock404_ButAuthenticationComesFirst()
    {
        using var unknown = await _client.SendAsync(SignedRequest(_server.BaseAddress, "/model/x/invoke", "{}"), Ct);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.StartsWith("UnknownOperationException:", (await unknown.ReadBedrockErrorAsync()).Type);

        using var get = await _client.GetAsync("model/x/converse", Ct);
        Assert.Equal(HttpStatusCode.Forbidden, get.StatusCode);
        Assert.StartsWith("MissingAuthenticationTokenException:", (await get.ReadBedrockErrorAsync()).Type);
    }

    [Fact]
    public async Task OwnCredentialsOnly_DefaultPairRejected_SignatureOffAcceptsUnsigned()
    {
        var options = new SimulatorOptions();
        options.BedrockCredentials.Clear();
        options.BedrockCredentials["AKIDGATEWAY"] = "gateway-secret";
        await using (var own = await SimulatorServer.StartAsync(options, ct: Ct))
        {
            using var client = CreateClient(own, apiKey: null);
            using var accepted = await client.SendAsync(SignedRequest(own.BaseAddress, RawPath(ModelId), UserConverse("hi"), "AKIDGATEWAY", "gateway-secret"), Ct);
            using var rejected = await client.SendAsync(SignedRequest(own.BaseAddress, RawPath(ModelId), UserConverse("hi")), Ct);
            Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
            Assert.StartsWith("UnrecognizedClientException:", (await rejected.ReadBedrockErrorAsync()).Type);
        }

        await using var open = await SimulatorServer.StartAsync(new SimulatorOptions { BedrockRequireSignature = false }, ct: Ct);
        using var openClient = CreateClient(open, apiKey: null);
        using var unsigned = await openClient.PostAsync(RawPath(ModelId).TrimStart('/'), new StringContent(UserConverse("hi")), Ct);
        Assert.Equal(HttpStatusCode.OK, unsigned.StatusCode);
        using var get = await openClient.GetAsync("model/x/converse", Ct);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, get.StatusCode);
        Assert.StartsWith("UnknownOperationException:", (await get.ReadBedrockErrorAsync()).Type);
    }

    [Fact]
    public async Task OpenAiEndpoint_StillRequiresItsApiKey()
    {
        using var response = await _client.PostChatAsync(UserRequest("hi"));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }
}
