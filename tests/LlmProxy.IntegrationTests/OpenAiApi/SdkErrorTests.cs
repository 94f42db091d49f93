using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text.Json;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Simulator;
using OpenAI;
using OpenAI.Chat;

namespace LlmProxy.IntegrationTests.OpenAiApi;

/// <summary>
/// Every error path as an application sees it through the official OpenAI .NET SDK: a <see cref="ClientResultException"/>
/// with OpenAI's status, and the gateway's error code and message in what the SDK reports.
/// </summary>
public sealed class SdkErrorTests : IAsyncLifetime
{
    private const string TenantKey = "sk-tenant-sdk-errors-0123456789";
    private const string Model = "gpt-test";
    private SimulatorServer _simulator = null!;
    private GatewayHost _gateway = null!;

    public async ValueTask InitializeAsync()
    {
        _simulator = await SimulatorServer.StartAsync(new SimulatorOptions());
        _gateway = await GatewayHost.StartAsync(new GatewaySettings()
            .Tenant("acme", TenantKey)
            .Set("LlmProxy:MaxRequestBodyBytes", "4096")
            .OpenAi(Model, "sim-primary", _simulator.BaseAddress, configure: d => d.Set("Timeouts:FirstByte", "00:00:01")));
    }

    public async ValueTask DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _simulator.DisposeAsync();
    }

    /// <summary>The SDK with its own retries off, so each test sees the gateway's first answer (and takes no back-off time).</summary>
    private ChatClient Client(string model = Model, string apiKey = TenantKey) =>
        new(model, new ApiKeyCredential(apiKey), new OpenAIClientOptions
        {
            Endpoint = new Uri(_gateway.BaseAddress, "v1"),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            NetworkTimeout = TimeSpan.FromSeconds(30),
        });

    private static async Task<ClientResultException> CompleteAsync(ChatClient client, string text = "hi") =>
        await Assert.ThrowsAsync<ClientResultException>(() => client.CompleteChatAsync([new UserChatMessage(text)]));

    private static async Task<ClientResultException> StreamAsync(ChatClient client) =>
        await Assert.ThrowsAsync<ClientResultException>(async () =>
        {
            await foreach (var _ in client.CompleteChatStreamingAsync([new UserChatMessage("hi")]))
            {
            }
        });

    /// <summary>The error object the SDK received, and a check that the SDK's own message carries its code and text.</summary>
    private static JsonElement ErrorOf(ClientResultException exception, int status, string code)
    {
        Assert.Equal(status, exception.Status);
        var error = JsonDocument.Parse(exception.GetRawResponse()!.Content.ToString()).RootElement.GetProperty("error");
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.Contains(code, exception.Message);
        Assert.Contains(error.GetProperty("message").GetString()!, exception.Message);
        return error;
    }

    [Fact]
    public async Task InvalidKey_Sdk_Throws401InvalidApiKey()
    {
        var exception = await CompleteAsync(Client(apiKey: "sk-not-a-tenant-key"));

        var error = ErrorOf(exception, 401, "invalid_api_key");
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal(0, _simulator.Requests.Count);
    }

    [Fact]
    public async Task InvalidKey_SdkStreaming_Throws401InvalidApiKey()
    {
        var exception = await StreamAsync(Client(apiKey: "sk-not-a-tenant-key"));

        ErrorOf(exception, 401, "invalid_api_key");
    }

    [Fact]
    public async Task UnknownModel_Sdk_Throws404ModelNotFoundNamingTheModel()
    {
        var exception = await CompleteAsync(Client(model: "gpt-unknown"));

        var error = ErrorOf(exception, 404, "model_not_found");
        Assert.Contains("gpt-unknown", error.GetProperty("message").GetString());
        Assert.Equal("model", error.GetProperty("param").GetString());
    }

    [Fact]
    public async Task MissingMessages_SdkProtocolMethod_Throws400NamingTheParam()
    {
        // The typed API always sends messages; the SDK's protocol method sends what the application wrote.
        using var body = BinaryContent.Create(BinaryData.FromString("""{"model":"gpt-test"}"""));

        var exception = await Assert.ThrowsAsync<ClientResultException>(() => Client().CompleteChatAsync(body));

        var error = ErrorOf(exception, 400, "missing_required_parameter");
        Assert.Equal("messages", error.GetProperty("param").GetString());
        Assert.Contains("messages", exception.Message);
    }

    [Fact]
    public async Task BodyOverLimit_Sdk_Throws413RequestTooLarge()
    {
        var exception = await CompleteAsync(Client(), new string('x', 8192));

        ErrorOf(exception, 413, "request_too_large");
        Assert.Equal(0, _simulator.Requests.Count);
    }

    [Fact]
    public async Task UpstreamRateLimited_Sdk_Throws429WithRetryAfter()
    {
        _simulator.Faults.Set(SimulatorFault.Status(429, retryAfterSeconds: 7));

        var exception = await CompleteAsync(Client());

        ErrorOf(exception, 429, "rate_limit_exceeded");
        Assert.True(exception.GetRawResponse()!.Headers.TryGetValue("Retry-After", out var retryAfter));
        Assert.Equal("7", retryAfter);
    }

    [Theory]
    [InlineData(500, 502, "upstream_error")]
    [InlineData(502, 502, "upstream_error")]
    [InlineData(503, 503, "upstream_unavailable")]
    [InlineData(504, 504, "upstream_timeout")]
    [InlineData(401, 502, "upstream_authentication_failed")]
    public async Task UpstreamStatus_Sdk_ThrowsGatewayStatusNamingTheDeployment(int upstreamStatus, int expectedStatus, string code)
    {
        _simulator.Faults.Set(SimulatorFault.Status(upstreamStatus));

        var exception = await CompleteAsync(Client());

        var error = ErrorOf(exception, expectedStatus, code);
        Assert.Contains("sim-primary", error.GetProperty("message").GetString());
        Assert.DoesNotContain(_simulator.BaseAddress.Authority, exception.Message);
    }

    [Fact]
    public async Task UpstreamUnavailable_SdkStreaming_Throws503BeforeAnyUpdate()
    {
        _simulator.Faults.Set(SimulatorFault.Status(503));

        var exception = await StreamAsync(Client());

        ErrorOf(exception, 503, "upstream_unavailable");
    }

    [Fact]
    public async Task UpstreamHangs_Sdk_Throws504UpstreamTimeout()
    {
        _simulator.Faults.Set(SimulatorFault.Hang());

        var exception = await CompleteAsync(Client());

        ErrorOf(exception, 504, "upstream_timeout");
    }

    [Fact]
    public async Task UpstreamRefusesConnections_Sdk_Throws502UpstreamUnreachable_ThenRecoversAtTheSameAddress()
    {
        var client = Client();
        await client.CompleteChatAsync([new UserChatMessage("warm the connection pool")]);
        _simulator.Faults.Set(SimulatorFault.Refuse());

        var exception = await CompleteAsync(client);
        _simulator.Faults.Clear();
        ChatCompletion recovered = await client.CompleteChatAsync([new UserChatMessage("hi")]);

        var error = ErrorOf(exception, 502, "upstream_unreachable");
        Assert.Contains("sim-primary", error.GetProperty("message").GetString());
        Assert.Equal("Simulated reply to: hi", recovered.Content[0].Text);
    }

    [Fact]
    public async Task UpstreamUnreachable_Sdk_Throws502UpstreamUnreachable()
    {
        await using var gateway = await GatewayHost.StartAsync(new GatewaySettings()
            .Tenant("acme", TenantKey)
            .Deployment(Model, "nowhere", "openai", $"http://127.0.0.1:{ErrorResponseTests.ClosedPort()}/v1"));
        var client = new ChatClient(Model, new ApiKeyCredential(TenantKey),
            new OpenAIClientOptions { Endpoint = new Uri(gateway.BaseAddress, "v1"), RetryPolicy = new ClientRetryPolicy(maxRetries: 0) });

        var exception = await CompleteAsync(client);

        var error = ErrorOf(exception, 502, "upstream_unreachable");
        Assert.Contains("nowhere", error.GetProperty("message").GetString());
    }
}
