using System.Net;
using System.Text.Json;
using LlmProxy.Simulator;
using static LlmProxy.Tests.Simulator.SimulatorHttp;
using Xunit;

namespace LlmProxy.Tests.Simulator;

public sealed class ChatCompletionsEndpointTests : IAsyncLifetime
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
    public async Task Post_NonStreaming_ReturnsOpenAiChatCompletionShape()
    {
        using var response = await _client.PostChatAsync(UserRequest("Hello there", model: "my-model"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        Assert.StartsWith("req_", response.Headers.GetValues("x-request-id").Single());
        var body = await response.ReadJsonAsync();
        Assert.StartsWith("chatcmpl-", body.GetProperty("id").GetString());
        Assert.Equal("chat.completion", body.GetProperty("object").GetString());
        Assert.InRange(body.GetProperty("created").GetInt64(), DateTimeOffset.UtcNow.AddMinutes(-1).ToUnixTimeSeconds(), DateTimeOffset.UtcNow.AddMinutes(1).ToUnixTimeSeconds());
        Assert.Equal("my-model", body.GetProperty("model").GetString());
        Assert.StartsWith("fp_", body.GetProperty("system_fingerprint").GetString());

        var choice = Assert.Single(body.GetProperty("choices").EnumerateArray());
        Assert.Equal(0, choice.GetProperty("index").GetInt32());
        Assert.Equal(JsonValueKind.Null, choice.GetProperty("logprobs").ValueKind);
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        var message = choice.GetProperty("message");
        Assert.Equal("assistant", message.GetProperty("role").GetString());
        Assert.Equal("Simulated reply to: Hello there", message.GetProperty("content").GetString());
        Assert.Equal(JsonValueKind.Null, message.GetProperty("refusal").ValueKind);
        Assert.False(message.TryGetProperty("tool_calls", out _));

        var usage = body.GetProperty("usage");
        Assert.Equal(5, usage.GetProperty("prompt_tokens").GetInt32()); // 2 words + 3 per message
        Assert.Equal(5, usage.GetProperty("completion_tokens").GetInt32()); // "Simulated reply to: Hello there"
        Assert.Equal(10, usage.GetProperty("total_tokens").GetInt32());
        Assert.Equal(0, usage.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
        Assert.Equal(0, usage.GetProperty("completion_tokens_details").GetProperty("reasoning_tokens").GetInt32());
    }

    [Fact]
    public async Task Post_SameRequestTwice_SameContentAndUsageButNewId()
    {
        var request = """{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"What is 2+2?"}],"n":2}""";

        using var first = await _client.PostChatAsync(request);
        using var second = await _client.PostChatAsync(request);
        var a = await first.ReadJsonAsync();
        var b = await second.ReadJsonAsync();

        Assert.Equal(a.GetProperty("choices").GetRawText(), b.GetProperty("choices").GetRawText());
        Assert.Equal(a.GetProperty("usage").GetRawText(), b.GetProperty("usage").GetRawText());
        Assert.NotEqual(a.GetProperty("id").GetString(), b.GetProperty("id").GetString());
    }

    [Fact]
    public async Task Post_PromptTokens_CountWordsOfAllMessagesPlusThreePerMessage()
    {
        var request = """
            {"model":"m","messages":[
              {"role":"system","content":"You are terse."},
              {"role":"user","content":[{"type":"text","text":"one two"},{"type":"image_url","image_url":{"url":"http://x/y.png"}},{"type":"text","text":"three"}]},
              {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},
              {"role":"tool","tool_call_id":"call_1","content":"sunny and warm"},
              {"role":"user","content":"thanks"}]}
            """;

        using var response = await _client.PostChatAsync(request);

        var usage = (await response.ReadJsonAsync()).GetProperty("usage");
        Assert.Equal(3 + 3 + 0 + 3 + 1 + (5 * 3), usage.GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task Post_MaxTokens_TruncatesToThatManyWordsWithFinishReasonLength()
    {
        using var response = await _client.PostChatAsync(UserRequest("a b c d e f", extra: ",\"max_tokens\":4"));

        var choice = (await response.ReadJsonAsync()).GetProperty("choices")[0];
        Assert.Equal("length", choice.GetProperty("finish_reason").GetString());
        Assert.Equal("Simulated reply to: a", choice.GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task Post_MaxCompletionTokens_WinsOverMaxTokens()
    {
        using var response = await _client.PostChatAsync(UserRequest("a b c d e f", extra: ",\"max_tokens\":4,\"max_completion_tokens\":2"));

        var body = await response.ReadJsonAsync();
        Assert.Equal("Simulated reply", body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(2, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Post_StopSequence_CutsBeforeItWithFinishReasonStop()
    {
        using var response = await _client.PostChatAsync(UserRequest("alpha beta. gamma", extra: ",\"stop\":[\"zzz\",\".\"]"));

        var body = await response.ReadJsonAsync();
        var choice = body.GetProperty("choices")[0];
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        Assert.Equal("Simulated reply to: alpha beta", choice.GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(5, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Post_NGreaterThanOne_ReturnsThatManyChoicesAndSumsCompletionTokens()
    {
        using var response = await _client.PostChatAsync(UserRequest("hi", extra: ",\"n\":3"));

        var body = await response.ReadJsonAsync();
        var choices = body.GetProperty("choices").EnumerateArray().ToList();
        Assert.Equal([0, 1, 2], choices.Select(c => c.GetProperty("index").GetInt32()));
        Assert.Equal("Simulated reply to: hi", choices[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("Simulated reply to: hi (choice 2)", choices[1].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(4 + 6 + 6, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Post_WithTools_CallsFirstToolWithArgumentsFromItsSchema()
    {
        using var response = await _client.PostChatAsync(UserRequest("weather in Paris?", extra: "," + WeatherTools));

        var choice = (await response.ReadJsonAsync()).GetProperty("choices")[0];
        Assert.Equal("tool_calls", choice.GetProperty("finish_reason").GetString());
        var message = choice.GetProperty("message");
        Assert.Equal(JsonValueKind.Null, message.GetProperty("content").ValueKind);
        var call = Assert.Single(message.GetProperty("tool_calls").EnumerateArray());
        Assert.Matches("^call_[0-9a-f]{24}$", call.GetProperty("id").GetString());
        Assert.Equal("function", call.GetProperty("type").GetString());
        Assert.Equal("get_weather", call.GetProperty("function").GetProperty("name").GetString());
        Assert.Equal("""{"city":"sample","unit":"celsius","days":1}""", call.GetProperty("function").GetProperty("arguments").GetString());
    }

    [Fact]
    public async Task Post_WithToolsAndParallelInPrompt_CallsEveryTool()
    {
        using var response = await _client.PostChatAsync(UserRequest("Do both in parallel please", extra: "," + WeatherTools));

        var calls = (await response.ReadJsonAsync()).GetProperty("choices")[0].GetProperty("message").GetProperty("tool_calls").EnumerateArray().ToList();
        Assert.Equal(["get_weather", "get_time"], calls.Select(c => c.GetProperty("function").GetProperty("name").GetString()));
        Assert.Equal("""{"timezone":"sample","precise":true}""", calls[1].GetProperty("function").GetProperty("arguments").GetString());
        Assert.NotEqual(calls[0].GetProperty("id").GetString(), calls[1].GetProperty("id").GetString());
    }

    [Fact]
    public async Task Post_ParallelButParallelToolCallsFalse_CallsOneTool()
    {
        using var response = await _client.PostChatAsync(UserRequest("parallel", extra: ",\"parallel_tool_calls\":false," + WeatherTools));

        var calls = (await response.ReadJsonAsync()).GetProperty("choices")[0].GetProperty("message").GetProperty("tool_calls");
        Assert.Equal(1, calls.GetArrayLength());
    }

    [Fact]
    public async Task Post_NamedToolChoice_CallsThatTool()
    {
        using var response = await _client.PostChatAsync(UserRequest(
            "what time is it",
            extra: ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_time\"}}," + WeatherTools));

        var call = (await response.ReadJsonAsync()).GetProperty("choices")[0].GetProperty("message").GetProperty("tool_calls")[0];
        Assert.Equal("get_time", call.GetProperty("function").GetProperty("name").GetString());
    }

    [Fact]
    public async Task Post_ToolChoiceNone_AnswersWithText()
    {
        using var response = await _client.PostChatAsync(UserRequest("hi", extra: ",\"tool_choice\":\"none\"," + WeatherTools));

        var choice = (await response.ReadJsonAsync()).GetProperty("choices")[0];
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        Assert.Equal("Simulated reply to: hi", choice.GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task Post_LastMessagesAreToolResults_AnswersWithTheirContent()
    {
        var request = $$$"""
            {"model":"m",{{{WeatherTools}}},"messages":[
              {"role":"user","content":"weather and time in parallel"},
              {"role":"assistant","content":null,"tool_calls":[
                {"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{}"}},
                {"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{}"}}]},
              {"role":"tool","tool_call_id":"call_a","content":"18C and sunny"},
              {"role":"tool","tool_call_id":"call_b","content":[{"type":"text","text":"14:05"}]}]}
            """;

        using var response = await _client.PostChatAsync(request);

        var choice = (await response.ReadJsonAsync()).GetProperty("choices")[0];
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        Assert.Equal("Simulated reply using tool results: 18C and sunny; 14:05", choice.GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task Post_ToolCallUsage_CountsNameAndArgumentWords()
    {
        using var response = await _client.PostChatAsync(UserRequest("x", extra: "," + WeatherTools));

        var usage = (await response.ReadJsonAsync()).GetProperty("usage");
        Assert.Equal(2, usage.GetProperty("completion_tokens").GetInt32()); // "get_weather" + one whitespace-free JSON word
    }

    [Fact]
    public async Task Post_NonStreamingWithLatency_DelaysTheResponseHeaders()
    {
        await using var slow = await SimulatorServer.StartAsync(new SimulatorOptions { Latency = TimeSpan.FromMilliseconds(300) }, ct: Ct);
        using var client = CreateClient(slow);
        var started = System.Diagnostics.Stopwatch.StartNew();

        using var response = await client.PostChatAsync(UserRequest("hi"));

        Assert.True(started.Elapsed >= TimeSpan.FromMilliseconds(280), $"headers after {started.Elapsed}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }
}
