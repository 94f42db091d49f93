using System.Net;
using System.Text.Json;
using LlmProxy.Simulator;
using static LlmProxy.Tests.Simulator.SimulatorHttp;
using Xunit;

namespace LlmProxy.Tests.Simulator;

public sealed class ChatCompletionValidationTests : IAsyncLifetime
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

    [Theory]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}]}""", "model", "missing_required_parameter")]
    [InlineData("""{"model":42,"messages":[{"role":"user","content":"hi"}]}""", "model", "invalid_type")]
    [InlineData("""{"model":"","messages":[{"role":"user","content":"hi"}]}""", "model", "empty_string")]
    [InlineData("""{"model":"m"}""", "messages", "missing_required_parameter")]
    [InlineData("""{"model":"m","messages":[]}""", "messages", "empty_array")]
    [InlineData("""{"model":"m","messages":"hi"}""", "messages", "invalid_type")]
    [InlineData("""{"model":"m","messages":["hi"]}""", "messages[0]", "invalid_type")]
    [InlineData("""{"model":"m","messages":[{"content":"hi"}]}""", "messages[0].role", "missing_required_parameter")]
    [InlineData("""{"model":"m","messages":[{"role":"robot","content":"hi"}]}""", "messages[0].role", "invalid_value")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"hi"}],"n":0}""", "n", "integer_below_min_value")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":0}""", "max_tokens", "integer_below_min_value")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":"many"}""", "max_completion_tokens", "invalid_type")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":"yes"}""", "stream", "invalid_type")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true}}""", "stream_options", "invalid_value")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"hi"}],"stop":["a","b","c","d","e"]}""", "stop", "array_above_max_length")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{}}]}""", "tools[0].function.name", "missing_required_parameter")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"hi"}],"tool_choice":"sometimes","tools":[{"type":"function","function":{"name":"f"}}]}""", "tool_choice", "invalid_value")]
    public async Task Post_InvalidRequest_Returns400WithParamAndCode(string body, string param, string code)
    {
        using var response = await _client.PostChatAsync(body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = (await response.ReadJsonAsync()).GetProperty("error");
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("[1,2]")]
    [InlineData("")]
    public async Task Post_BodyNotAJsonObject_Returns400WithNullParam(string body)
    {
        using var response = await _client.PostChatAsync(body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = (await response.ReadJsonAsync()).GetProperty("error");
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal(JsonValueKind.Null, error.GetProperty("param").ValueKind);
        Assert.Equal(JsonValueKind.Null, error.GetProperty("code").ValueKind);
        Assert.Contains("could not parse the JSON body", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Post_NamedToolChoiceNotInTools_Returns400()
    {
        using var response = await _client.PostChatAsync(UserRequest(
            "hi",
            extra: ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"nope\"}},\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("tool_choice", (await response.ReadJsonAsync()).GetProperty("error").GetProperty("param").GetString());
    }

    [Fact]
    public async Task Post_UnknownFields_AreIgnoredLikeOpenAi()
    {
        using var response = await _client.PostChatAsync(UserRequest("hi", extra: ",\"temperature\":0.2,\"user\":\"u1\",\"something_new\":{\"a\":1}"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }
}
