using System.Net;
using System.Text;
using System.Text.Json;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Simulator;

namespace LlmProxy.IntegrationTests.OpenAiApi;

/// <summary>Every error path answers in OpenAI's shape with OpenAI's status, and leaks nothing of the upstream.</summary>
public sealed class ErrorResponseTests : IAsyncLifetime
{
    private const string TenantKey = "sk-tenant-errors-0123456789";
    private const string RestrictedKey = "sk-tenant-restricted-0123456789";
    private SimulatorServer _simulator = null!;
    private GatewayHost _gateway = null!;
    private HttpClient _http = null!;

    public async ValueTask InitializeAsync()
    {
        _simulator = await SimulatorServer.StartAsync(new SimulatorOptions());
        _gateway = await GatewayHost.StartAsync(new GatewaySettings()
            .Tenant("acme", TenantKey)
            .Tenant("restricted", RestrictedKey, "gpt-test")
            .Set("LlmProxy:MaxRequestBodyBytes", "2048")
            .OpenAi("gpt-test", "sim-primary", _simulator.BaseAddress, configure: d => d.Set("Timeouts:FirstByte", "00:00:01"))
            .OpenAi("gpt-other", "sim-other", _simulator.BaseAddress));
        _http = _gateway.CreateClient(TenantKey);
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        await _gateway.DisposeAsync();
        await _simulator.DisposeAsync();
    }

    private async Task<(HttpStatusCode Status, JsonElement Error, HttpResponseMessage Response)> PostAsync(string body, HttpClient? client = null)
    {
        var response = await (client ?? _http).PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        return (response.StatusCode, await ReadErrorAsync(response), response);
    }

    private static async Task<JsonElement> ReadErrorAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var error = JsonDocument.Parse(text).RootElement.GetProperty("error");
        // OpenAI's shape: all four fields, always present.
        Assert.Equal(JsonValueKind.String, error.GetProperty("message").ValueKind);
        Assert.Equal(JsonValueKind.String, error.GetProperty("type").ValueKind);
        Assert.True(error.TryGetProperty("param", out _));
        Assert.True(error.TryGetProperty("code", out _));
        return error;
    }

    [Theory]
    [InlineData("{\"model\": ", null, "invalid_json")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}]}""", "model", "missing_required_parameter")]
    [InlineData("""{"model":"gpt-test"}""", "messages", "missing_required_parameter")]
    [InlineData("""{"model":"gpt-test","messages":[{"role":"robot","content":"hi"}]}""", "messages[0].role", "invalid_value")]
    public async Task BadRequest_Returns400NamingTheParam(string body, string? param, string code)
    {
        var (status, error, _) = await PostAsync(body);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.Equal(0, _simulator.Requests.Count);
    }

    [Fact]
    public async Task UnknownModel_Returns404ModelNotFound()
    {
        var (status, error, _) = await PostAsync("""{"model":"gpt-nope","messages":[{"role":"user","content":"hi"}]}""");

        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Equal("model_not_found", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task ModelNotAllowedForTenant_Returns404LikeAnUnknownModel()
    {
        using var restricted = _gateway.CreateClient(RestrictedKey);

        var (status, error, _) = await PostAsync("""{"model":"gpt-other","messages":[{"role":"user","content":"hi"}]}""", restricted);
        var models = JsonDocument.Parse(await restricted.GetStringAsync("/v1/models")).RootElement.GetProperty("data");
        using var single = await restricted.GetAsync("/v1/models/gpt-other");

        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Equal("model_not_found", error.GetProperty("code").GetString());
        Assert.Equal(["gpt-test"], models.EnumerateArray().Select(m => m.GetProperty("id").GetString()));
        Assert.Equal(HttpStatusCode.NotFound, single.StatusCode);
        Assert.Equal("model_not_found", (await ReadErrorAsync(single)).GetProperty("code").GetString());
    }

    [Theory]
    [InlineData(null)]
    [InlineData("Bearer sk-wrong-key")]
    [InlineData("Basic dXNlcjpwYXNz")]
    public async Task MissingOrInvalidKey_Returns401InvalidApiKey(string? authorization)
    {
        using var http = _gateway.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent("""{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"),
        };
        if (authorization is not null)
        {
            request.Headers.TryAddWithoutValidation("Authorization", authorization);
        }

        using var response = await http.SendAsync(request);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("invalid_api_key", (await ReadErrorAsync(response)).GetProperty("code").GetString());
    }

    [Fact]
    public async Task BodyOverLimit_Returns413()
    {
        var big = """{"model":"gpt-test","messages":[{"role":"user","content":"%"}]}""".Replace("%", new string('x', 4096));

        var (status, error, _) = await PostAsync(big);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.Equal("request_too_large", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task BodyOverLimit_ChunkedWithoutLength_Returns413()
    {
        var big = Encoding.UTF8.GetBytes("""{"model":"gpt-test","messages":[{"role":"user","content":"%"}]}""".Replace("%", new string('x', 4096)));
        using var content = new StreamContent(new MemoryStream(big));
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = content };
        request.Headers.TransferEncodingChunked = true;

        using var response = await _http.SendAsync(request);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("request_too_large", (await ReadErrorAsync(response)).GetProperty("code").GetString());
    }

    [Fact]
    public async Task UnknownPathAndWrongMethod_Return404And405InOpenAiShape()
    {
        using var unknown = await _http.GetAsync("/v1/engines");
        using var wrongMethod = await _http.GetAsync("/v1/chat/completions");
        using var outside = await _http.GetAsync("/nothing-here");

        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal("unknown_url", (await ReadErrorAsync(unknown)).GetProperty("code").GetString());
        Assert.Equal(HttpStatusCode.MethodNotAllowed, wrongMethod.StatusCode);
        Assert.Equal("method_not_allowed", (await ReadErrorAsync(wrongMethod)).GetProperty("code").GetString());
        Assert.Equal(HttpStatusCode.NotFound, outside.StatusCode);
        Assert.Equal("unknown_url", (await ReadErrorAsync(outside)).GetProperty("code").GetString());
    }

    [Theory]
    [InlineData(500, HttpStatusCode.BadGateway, "upstream_error")]
    [InlineData(503, HttpStatusCode.ServiceUnavailable, "upstream_unavailable")]
    [InlineData(401, HttpStatusCode.BadGateway, "upstream_authentication_failed")]
    public async Task UpstreamFailure_Returns5xxNamingTheDeploymentOnly(int upstreamStatus, HttpStatusCode expected, string code)
    {
        _simulator.Faults.Set(SimulatorFault.Status(upstreamStatus));

        var (status, error, response) = await PostAsync("""{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}""");

        Assert.Equal(expected, status);
        Assert.Equal(code, error.GetProperty("code").GetString());
        var message = error.GetProperty("message").GetString()!;
        Assert.Contains("sim-primary", message);
        AssertNoInternals(message);
        Assert.False(response.Headers.Contains("x-llmproxy-deployment"));
    }

    [Fact]
    public async Task UpstreamRateLimited_Returns429WithRetryAfter()
    {
        _simulator.Faults.Set(SimulatorFault.Status(429, retryAfterSeconds: 7));

        var (status, error, response) = await PostAsync("""{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}""");

        Assert.Equal(HttpStatusCode.TooManyRequests, status);
        Assert.Equal("rate_limit_exceeded", error.GetProperty("code").GetString());
        Assert.Equal(TimeSpan.FromSeconds(7), response.Headers.RetryAfter?.Delta);
    }

    [Fact]
    public async Task UpstreamUnreachable_Returns502()
    {
        await using var gateway = await GatewayHost.StartAsync(new GatewaySettings()
            .Tenant("acme", TenantKey)
            .Deployment("gpt-test", "nowhere", "openai", $"http://127.0.0.1:{ClosedPort()}/v1"));
        using var http = gateway.CreateClient(TenantKey);

        using var response = await http.PostAsync("/v1/chat/completions", new StringContent("""{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"));
        var error = await ReadErrorAsync(response);

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("upstream_unreachable", error.GetProperty("code").GetString());
        Assert.Contains("nowhere", error.GetProperty("message").GetString());
        AssertNoInternals(error.GetProperty("message").GetString()!);
    }

    [Fact]
    public async Task UpstreamHangs_Returns504AfterTheFirstByteTimeout()
    {
        _simulator.Faults.Set(SimulatorFault.Hang());

        var started = System.Diagnostics.Stopwatch.StartNew();
        var (status, error, _) = await PostAsync("""{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}""");

        Assert.Equal(HttpStatusCode.GatewayTimeout, status);
        Assert.Equal("upstream_timeout", error.GetProperty("code").GetString());
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(10), $"took {started.Elapsed}");
    }

    [Fact]
    public async Task MidStreamFailure_EndsWithAnErrorEventNotDone()
    {
        _simulator.Faults.Set(SimulatorFault.MidStreamAbort(afterChunks: 3));

        using var response = await _http.PostAsync("/v1/chat/completions", new StringContent(
            """{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"one two three four five six seven"}]}""", Encoding.UTF8, "application/json"));
        var events = await Sse.ReadDataAsync(response);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(4, events.Count);
        Assert.DoesNotContain("[DONE]", events);
        var error = JsonDocument.Parse(events[^1]).RootElement.GetProperty("error");
        Assert.Equal("upstream_stream_interrupted", error.GetProperty("code").GetString());
        Assert.Contains("sim-primary", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Health_LivenessAndReadinessAnswer()
    {
        using var http = _gateway.CreateClient();

        using var live = await http.GetAsync("/healthz");
        using var ready = await http.GetAsync("/readyz");

        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        var body = JsonDocument.Parse(await ready.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("healthy", body.GetProperty("status").GetString());
        Assert.Equal("healthy", body.GetProperty("checks").GetProperty("configuration").GetProperty("status").GetString());
    }

    private void AssertNoInternals(string message)
    {
        Assert.DoesNotContain("127.0.0.1", message);
        Assert.DoesNotContain(_simulator.BaseAddress.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), message);
        Assert.DoesNotContain("http", message);
    }

    internal static int ClosedPort()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
