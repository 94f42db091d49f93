using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using LlmProxy.Simulator;
using static LlmProxy.Tests.Simulator.SimulatorHttp;
using Xunit;

namespace LlmProxy.Tests.Simulator;

public sealed class FaultTests : IAsyncLifetime
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
    public async Task Status500_ReturnsOpenAiServerError()
    {
        _server.Faults.Set(SimulatorFault.Status(500));

        using var response = await _client.PostChatAsync(UserRequest("hi"));

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Equal(
            """{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}""",
            await response.Content.ReadAsStringAsync(Ct));
    }

    [Fact]
    public async Task Status429WithRetryAfter_ReturnsRateLimitErrorAndHeader()
    {
        _server.Faults.Set(SimulatorFault.Status(429, retryAfterSeconds: 7));

        using var response = await _client.PostChatAsync(UserRequest("hi"));

        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(7), response.Headers.RetryAfter?.Delta);
        var error = (await response.ReadJsonAsync()).GetProperty("error");
        Assert.Equal("requests", error.GetProperty("type").GetString());
        Assert.Equal("rate_limit_exceeded", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Status503_ReturnsOverloadedError()
    {
        _server.Faults.Set(SimulatorFault.Status(503));

        using var response = await _client.PostChatAsync(UserRequest("hi"));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.False(response.Headers.Contains("Retry-After"));
        var error = (await response.ReadJsonAsync()).GetProperty("error");
        Assert.Equal("server_error", error.GetProperty("type").GetString());
        Assert.Contains("overloaded", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Set_WithCount_AppliesToThatManyRequestsThenStops()
    {
        _server.Faults.Set(SimulatorFault.Status(500), count: 2);

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 3; i++)
        {
            using var response = await _client.PostChatAsync(UserRequest("hi"));
            statuses.Add(response.StatusCode);
        }

        Assert.Equal([HttpStatusCode.InternalServerError, HttpStatusCode.InternalServerError, HttpStatusCode.OK], statuses);
        Assert.Null(_server.Faults.Current);
    }

    [Fact]
    public async Task Clear_StopsAnUnlimitedFault()
    {
        _server.Faults.Set(SimulatorFault.Status(500));
        using (var failed = await _client.PostChatAsync(UserRequest("hi")))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        }

        _server.Faults.Clear();

        using var response = await _client.PostChatAsync(UserRequest("hi"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Reset_AbortsTheConnectionWithoutAResponse()
    {
        _server.Faults.Set(SimulatorFault.Reset(), count: 1);

        // A reset surfaces as "connection reset by peer" (or "response ended" if the FIN wins the race): never as a response.
        var exception = await Assert.ThrowsAsync<HttpRequestException>(() => _client.PostChatAsync(UserRequest("hi")));

        Assert.Null(exception.StatusCode);
        using var next = await _client.PostChatAsync(UserRequest("hi"));
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
    }

    [Fact]
    public async Task Hang_NeverAnswersUntilTheClientGivesUp()
    {
        _server.Faults.Set(SimulatorFault.Hang(), count: 1);
        using var giveUp = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        giveUp.CancelAfter(TimeSpan.FromMilliseconds(300));
        var started = Stopwatch.StartNew();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _client.PostChatUntilAsync(UserRequest("hi"), giveUp.Token));

        Assert.True(started.Elapsed >= TimeSpan.FromMilliseconds(250));
        Assert.Equal(1, _server.Requests.Count);
    }

    [Fact]
    public async Task Hang_StopAsyncEndsHungRequestsPromptly()
    {
        await using var server = await SimulatorServer.StartAsync(new SimulatorOptions(), ct: Ct);
        using var client = CreateClient(server);
        server.Faults.Set(SimulatorFault.Hang());
        var hung = client.PostChatAsync(UserRequest("hi"));
        await WaitUntilAsync(() => server.Requests.Count == 1);
        var stopping = Stopwatch.StartNew();

        await server.StopAsync();

        // The shutdown timeout is 5 s: finishing well before it shows the hung request ended when stopping began.
        Assert.True(stopping.Elapsed < TimeSpan.FromSeconds(4), $"stop took {stopping.Elapsed}");
        await Assert.ThrowsAsync<HttpRequestException>(() => hung);
    }

    [Fact]
    public async Task MidStreamAbort_SendsThatManyChunksThenDropsTheConnection()
    {
        _server.Faults.Set(SimulatorFault.MidStreamAbort(afterChunks: 3), count: 1);

        using var response = await _client.PostChatAsync(UserRequest("a b c d e", extra: ",\"stream\":true"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var received = new List<string>();
        var exception = await Record.ExceptionAsync(() => response.ReadEventsAsync(received));

        Assert.True(exception is HttpIOException or IOException, $"unexpected {exception}");
        Assert.Equal(3, received.Count);
        Assert.DoesNotContain("[DONE]", received);
    }

    [Fact]
    public async Task MidStreamError_SendsThatManyChunksThenAnErrorEventAndEnds()
    {
        _server.Faults.Set(SimulatorFault.MidStreamError(afterChunks: 2), count: 1);

        using var response = await _client.PostChatAsync(UserRequest("a b c d e", extra: ",\"stream\":true"));
        var events = await response.ReadEventsAsync();

        Assert.Equal(3, events.Count);
        Assert.Equal("chat.completion.chunk", Parse(events[1]).GetProperty("object").GetString());
        var error = Parse(events[2]).GetProperty("error");
        Assert.Equal("server_error", error.GetProperty("type").GetString());
        Assert.Equal(JsonValueKind.Null, error.GetProperty("param").ValueKind);
    }

    [Fact]
    public async Task MidStreamFault_AfterMoreChunksThanTheReplyHas_ReplacesDone()
    {
        _server.Faults.Set(SimulatorFault.MidStreamError(afterChunks: 1000), count: 1);

        using var response = await _client.PostChatAsync(UserRequest("a", extra: ",\"stream\":true"));
        var events = await response.ReadEventsAsync();

        Assert.True(Parse(events[^1]).TryGetProperty("error", out _));
        Assert.Equal("stop", Parse(events[^2]).GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task MidStreamFault_NonStreamingRequest_IsAnsweredNormallyAndKeepsTheCount()
    {
        _server.Faults.Set(SimulatorFault.MidStreamAbort(afterChunks: 1), count: 1);

        using var response = await _client.PostChatAsync(UserRequest("hi"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, _server.Faults.Remaining);
    }

    [Fact]
    public async Task ControlSurface_PostFault_ArmsItAndGetShowsIt()
    {
        using var posted = await _client.PostAsync(
            "_sim/faults",
            new StringContent("""{"kind":"status","statusCode":429,"retryAfterSeconds":2,"count":1}""", Encoding.UTF8, "application/json"),
            Ct);
        Assert.Equal(HttpStatusCode.OK, posted.StatusCode);
        var state = await posted.ReadJsonAsync();
        Assert.Equal("status", state.GetProperty("fault").GetProperty("kind").GetString());
        Assert.Equal(429, state.GetProperty("fault").GetProperty("statusCode").GetInt32());
        Assert.Equal(1, state.GetProperty("remaining").GetInt32());

        using var faulted = await _client.PostChatAsync(UserRequest("hi"));
        Assert.Equal(HttpStatusCode.TooManyRequests, faulted.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(2), faulted.Headers.RetryAfter?.Delta);

        var after = await (await _client.GetAsync("_sim/faults", Ct)).ReadJsonAsync();
        Assert.Equal(JsonValueKind.Null, after.GetProperty("fault").ValueKind);
    }

    [Theory]
    [InlineData("""{"kind":"reset"}""", SimulatorFaultKind.Reset)]
    [InlineData("""{"kind":"hang","count":3}""", SimulatorFaultKind.Hang)]
    [InlineData("""{"kind":"midStreamAbort","afterChunks":4}""", SimulatorFaultKind.MidStreamAbort)]
    [InlineData("""{"kind":"MidStreamError","afterChunks":0}""", SimulatorFaultKind.MidStreamError)]
    public async Task ControlSurface_PostEachKind_ArmsTheMatchingFault(string json, SimulatorFaultKind kind)
    {
        using var posted = await _client.PostAsync("_sim/faults", new StringContent(json, Encoding.UTF8, "application/json"), Ct);

        Assert.Equal(HttpStatusCode.OK, posted.StatusCode);
        Assert.Equal(kind, _server.Faults.Current?.Kind);
    }

    [Theory]
    [InlineData("""{"kind":"explode"}""", "kind")]
    [InlineData("""{"kind":"status"}""", "statusCode")]
    [InlineData("""{"kind":"status","statusCode":200}""", "statusCode")]
    [InlineData("""{"kind":"reset","count":0}""", "count")]
    [InlineData("""{"kind":"midStreamAbort","afterChunks":"two"}""", "afterChunks")]
    public async Task ControlSurface_PostInvalidFault_Returns400NamingTheField(string json, string param)
    {
        using var posted = await _client.PostAsync("_sim/faults", new StringContent(json, Encoding.UTF8, "application/json"), Ct);

        Assert.Equal(HttpStatusCode.BadRequest, posted.StatusCode);
        Assert.Equal(param, (await posted.ReadJsonAsync()).GetProperty("error").GetProperty("param").GetString());
        Assert.Null(_server.Faults.Current);
    }

    [Fact]
    public async Task ControlSurface_DeleteFaults_ClearsTheFault()
    {
        _server.Faults.Set(SimulatorFault.Hang());

        using var deleted = await _client.DeleteAsync("_sim/faults", Ct);

        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        Assert.Null(_server.Faults.Current);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(5), "condition not met in time");
            await Task.Delay(10, Ct);
        }
    }
}
