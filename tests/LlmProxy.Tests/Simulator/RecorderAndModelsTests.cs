using System.Net;
using System.Text;
using System.Text.Json;
using LlmProxy.Simulator;
using static LlmProxy.Tests.Simulator.SimulatorHttp;
using Xunit;

namespace LlmProxy.Tests.Simulator;

public sealed class RecorderAndModelsTests : IAsyncLifetime
{
    private SimulatorServer _server = null!;
    private HttpClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        var options = new SimulatorOptions { ExpectedApiKey = "sk-upstream", RecordedRequestLimit = 3 };
        options.Models.Add("claude-sim");
        _server = await SimulatorServer.StartAsync(options, ct: Ct);
        _client = CreateClient(_server, apiKey: "sk-upstream");
    }

    public async ValueTask DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task Requests_RecordsMethodPathHeadersAndBody()
    {
        var body = UserRequest("hi");
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions?trace=1") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Add("X-Tenant", "acme");

        using var response = await _client.SendAsync(request, Ct);

        var recorded = Assert.Single(_server.Requests.Recent);
        Assert.Equal("POST", recorded.Method);
        Assert.Equal("/v1/chat/completions", recorded.Path);
        Assert.Equal("?trace=1", recorded.QueryString);
        Assert.Equal("Bearer sk-upstream", recorded.Header("authorization"));
        Assert.Equal("acme", recorded.Header("X-Tenant"));
        Assert.Equal(body, recorded.Body);
    }

    [Fact]
    public async Task Requests_RecordedBeforeAuthAndFaults()
    {
        using var unauthorized = CreateClient(_server, apiKey: "sk-client-key-not-swapped");
        _server.Faults.Set(SimulatorFault.Reset());

        using var rejected = await unauthorized.PostChatAsync(UserRequest("hi"));
        await Assert.ThrowsAsync<HttpRequestException>(() => _client.PostChatAsync(UserRequest("again")));

        Assert.Equal(HttpStatusCode.Unauthorized, rejected.StatusCode);
        Assert.Equal(2, _server.Requests.Count);
        Assert.Equal("Bearer sk-client-key-not-swapped", _server.Requests.Recent[0].Header("Authorization"));
        Assert.Contains("again", _server.Requests.Last!.Body);
    }

    [Fact]
    public async Task Requests_KeepsOnlyTheLimitButCountsAll()
    {
        for (var i = 0; i < 5; i++)
        {
            using var response = await _client.PostChatAsync(UserRequest($"message {i}"));
        }

        Assert.Equal(5, _server.Requests.Count);
        Assert.Equal(["message 2", "message 3", "message 4"], _server.Requests.Recent.Select(r => JsonDocument.Parse(r.Body).RootElement.GetProperty("messages")[0].GetProperty("content").GetString()));

        _server.Requests.Reset();

        Assert.Equal(0, _server.Requests.Count);
        Assert.Empty(_server.Requests.Recent);
        Assert.Null(_server.Requests.Last);
    }

    [Fact]
    public async Task ControlSurface_GetRequests_ReturnsCountAndRecentWithoutControlCalls()
    {
        using var chat = await _client.PostChatAsync(UserRequest("hi"));
        using var models = await _client.GetAsync("v1/models", Ct);

        var document = await (await _client.GetAsync("_sim/requests", Ct)).ReadJsonAsync();

        Assert.Equal(2, document.GetProperty("count").GetInt32());
        var requests = document.GetProperty("requests").EnumerateArray().ToList();
        Assert.Equal(["/v1/chat/completions", "/v1/models"], requests.Select(r => r.GetProperty("path").GetString()));
        Assert.Equal("POST", requests[0].GetProperty("method").GetString());
        Assert.Equal("Bearer sk-upstream", requests[0].GetProperty("headers").GetProperty("Authorization").GetString());
        Assert.Equal(UserRequest("hi"), requests[0].GetProperty("body").GetString());

        using var deleted = await _client.DeleteAsync("_sim/requests", Ct);
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        Assert.Equal(0, _server.Requests.Count);
    }

    [Fact]
    public async Task Auth_MissingKey_Returns401InvalidApiKey()
    {
        using var anonymous = CreateClient(_server, apiKey: null);

        using var response = await anonymous.PostChatAsync(UserRequest("hi"));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var error = (await response.ReadJsonAsync()).GetProperty("error");
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal("invalid_api_key", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Auth_WrongKey_Returns401WithMaskedKey()
    {
        using var wrong = CreateClient(_server, apiKey: "sk-wrong-0123456789");

        using var response = await wrong.GetAsync("v1/models", Ct);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var message = (await response.ReadJsonAsync()).GetProperty("error").GetProperty("message").GetString();
        Assert.Contains("sk-************6789", message);
        Assert.DoesNotContain("sk-wrong-0123456789", message);
    }

    [Fact]
    public async Task Models_List_ReturnsConfiguredModelsInOpenAiShape()
    {
        using var response = await _client.GetAsync("v1/models", Ct);

        var body = await response.ReadJsonAsync();
        Assert.Equal("list", body.GetProperty("object").GetString());
        var data = body.GetProperty("data").EnumerateArray().ToList();
        Assert.Equal(["gpt-4o-mini", "gpt-4o", "claude-sim"], data.Select(m => m.GetProperty("id").GetString()));
        Assert.All(data, m =>
        {
            Assert.Equal("model", m.GetProperty("object").GetString());
            Assert.True(m.GetProperty("created").GetInt64() > 0);
            Assert.False(string.IsNullOrEmpty(m.GetProperty("owned_by").GetString()));
        });
    }

    [Fact]
    public async Task Models_GetKnown_ReturnsTheModel()
    {
        using var response = await _client.GetAsync("v1/models/gpt-4o", Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("gpt-4o", (await response.ReadJsonAsync()).GetProperty("id").GetString());
    }

    [Fact]
    public async Task Models_GetUnknown_Returns404ModelNotFound()
    {
        using var response = await _client.GetAsync("v1/models/gpt-99", Ct);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        var error = (await response.ReadJsonAsync()).GetProperty("error");
        Assert.Equal("model_not_found", error.GetProperty("code").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
    }

    [Fact]
    public async Task UnknownPath_Returns404OpenAiError()
    {
        using var response = await _client.GetAsync("v1/embeddings/whatever", Ct);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        var error = (await response.ReadJsonAsync()).GetProperty("error");
        Assert.Equal("Invalid URL (GET /v1/embeddings/whatever)", error.GetProperty("message").GetString());
        Assert.Equal(JsonValueKind.Null, error.GetProperty("code").ValueKind);
    }

    [Fact]
    public async Task KnownPathWrongMethod_ReturnsOpenAiShapedError()
    {
        using var response = await _client.GetAsync("v1/chat/completions", Ct);

        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
        Assert.Equal("invalid_request_error", (await response.ReadJsonAsync()).GetProperty("error").GetProperty("type").GetString());
    }
}
