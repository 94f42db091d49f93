using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Simulator;

namespace LlmProxy.IntegrationTests.OpenAiApi;

/// <summary>
/// Bodies whose text is not valid Unicode, and bodies declared as something other than JSON, through the real HTTP
/// pipeline: an OpenAI-routed and a Bedrock-routed model, with the response cache on and off, for every tenant. Each is
/// the client's error (400/415 in OpenAI's shape), never a 500, and nothing reaches an upstream.
/// </summary>
public sealed class InputValidationTests : IAsyncLifetime
{
    private const string AcmeKey = "sk-tenant-input-acme-0123456789";
    private const string GlobexKey = "sk-tenant-input-globex-0123456789";
    private readonly string _accessKeyVariable = "LLMPROXY_TEST_AWS_KEY_" + Guid.NewGuid().ToString("N");
    private readonly string _secretVariable = "LLMPROXY_TEST_AWS_SECRET_" + Guid.NewGuid().ToString("N");
    private SimulatorServer _bedrock = null!;
    private SimulatorServer _openAi = null!;
    private GatewayHost _cached = null!;
    private GatewayHost _uncached = null!;

    public async ValueTask InitializeAsync()
    {
        Environment.SetEnvironmentVariable(_accessKeyVariable, SimulatorOptions.DefaultBedrockAccessKeyId);
        Environment.SetEnvironmentVariable(_secretVariable, SimulatorOptions.DefaultBedrockSecretAccessKey);
        _bedrock = await SimulatorServer.StartAsync(new SimulatorOptions());
        _openAi = await SimulatorServer.StartAsync(new SimulatorOptions());
        _cached = await GatewayHost.StartAsync(Settings(cache: true));
        _uncached = await GatewayHost.StartAsync(Settings(cache: false));
    }

    private GatewaySettings Settings(bool cache) => new GatewaySettings()
        .Tenant("acme", AcmeKey)
        .Tenant("globex", GlobexKey, "gpt", "claude")
        .Set("LlmProxy:Cache:Enabled", cache ? "true" : "false")
        .OpenAi("gpt", "openai-sim", _openAi.BaseAddress)
        .Deployment("claude", "bedrock-sim", "bedrock", _bedrock.BaseAddress.ToString(), upstreamModel: "anthropic.claude-3-haiku-20240307-v1:0",
            configure: d => d.Set("Region", "us-east-1").Set("Settings:AccessKeyIdEnv", _accessKeyVariable).Set("Settings:SecretAccessKeyEnv", _secretVariable));

    public async ValueTask DisposeAsync()
    {
        await _cached.DisposeAsync();
        await _uncached.DisposeAsync();
        await _bedrock.DisposeAsync();
        await _openAi.DisposeAsync();
        Environment.SetEnvironmentVariable(_accessKeyVariable, null);
        Environment.SetEnvironmentVariable(_secretVariable, null);
    }

    public static TheoryData<string, bool, string> Cases()
    {
        var data = new TheoryData<string, bool, string>();
        foreach (var model in new[] { "gpt", "claude" })
        {
            foreach (var cache in new[] { true, false })
            {
                foreach (var tenant in new[] { "acme", "globex" })
                {
                    data.Add(model, cache, tenant);
                }
            }
        }
        return data;
    }

    /// <summary>Valid JSON framing with the raw bytes 0xC3 0x28 (not UTF-8) inside a message's content.</summary>
    private static byte[] InvalidUtf8Body(string model) =>
        [.. Encoding.UTF8.GetBytes($$"""{"model":"{{model}}","messages":[{"role":"user","content":"a"""), 0xC3, 0x28, .. "b\"}]}"u8];

    private static byte[] LoneSurrogateBody(string model) =>
        Encoding.UTF8.GetBytes($$"""{"model":"{{model}}","messages":[{"role":"user","content":"a\ud800b"}]}""");

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Post_InvalidUtf8InContent_Returns400InvalidValueNamingTheField(string model, bool cache, string tenant)
    {
        var upstreamBefore = UpstreamRequests;

        var (status, error) = await PostAsync(cache, tenant, InvalidUtf8Body(model));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_value", error.GetProperty("code").GetString());
        Assert.Equal("messages[0].content", error.GetProperty("param").GetString());
        Assert.Equal(upstreamBefore, UpstreamRequests);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Post_LoneSurrogateEscapeInContent_Returns400InvalidValueNamingTheField(string model, bool cache, string tenant)
    {
        var (status, error) = await PostAsync(cache, tenant, LoneSurrogateBody(model));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_value", error.GetProperty("code").GetString());
        Assert.Equal("messages[0].content", error.GetProperty("param").GetString());
    }

    [Theory]
    [InlineData("gpt")]
    [InlineData("claude")]
    public async Task Post_LoneSurrogateWithNoStore_Returns400(string model)
    {
        var (status, error) = await PostAsync(cache: true, "acme", LoneSurrogateBody(model), request => request.Headers.CacheControl = new CacheControlHeaderValue { NoStore = true });

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_value", error.GetProperty("code").GetString());
    }

    [Theory]
    [InlineData("gpt")]
    [InlineData("claude")]
    public async Task Post_LoneSurrogateInAPropertyName_Returns400NamingTheObject(string model)
    {
        var body = Encoding.UTF8.GetBytes($$"""{"model":"{{model}}","messages":[{"role":"user","content":"hi","x\udc00":1}]}""");

        var (status, error) = await PostAsync(cache: false, "acme", body);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("messages[0]", error.GetProperty("param").GetString());
    }

    [Theory]
    [InlineData("gpt")]
    [InlineData("claude")]
    public async Task Post_NoContentType_IsServed(string model)
    {
        using var http = _cached.CreateClient(AcmeKey);
        using var content = new ByteArrayContent(Encoding.UTF8.GetBytes($$"""{"model":"{{model}}","messages":[{"role":"user","content":"Hello there"}]}"""));
        Assert.Null(content.Headers.ContentType);

        using var response = await http.PostAsync("/v1/chat/completions", content);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Theory]
    [InlineData("text/plain")]
    [InlineData("application/x-www-form-urlencoded")]
    [InlineData("application/json; charset=utf-16")]
    public async Task Post_AnotherContentType_Returns415UnsupportedMediaType(string contentType)
    {
        var upstreamBefore = UpstreamRequests;

        var (status, error) = await PostAsync(cache: true, "acme", Encoding.UTF8.GetBytes("""{"model":"gpt","messages":[{"role":"user","content":"Hello there"}]}"""),
            request => request.Content!.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType));

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, status);
        Assert.Equal("unsupported_media_type", error.GetProperty("code").GetString());
        Assert.Equal(upstreamBefore, UpstreamRequests);
    }

    [Fact]
    public async Task Post_JsonWithUtf8Charset_IsServed()
    {
        var (status, _) = await PostAsync(cache: false, "acme", Encoding.UTF8.GetBytes("""{"model":"claude","messages":[{"role":"user","content":"Hello there"}]}"""),
            request => request.Content!.Headers.ContentType = MediaTypeHeaderValue.Parse("application/json; charset=UTF-8"), expectError: false);

        Assert.Equal(HttpStatusCode.OK, status);
    }

    private int UpstreamRequests => _openAi.Requests.Count + _bedrock.Requests.Count;

    private async Task<(HttpStatusCode Status, JsonElement Error)> PostAsync(bool cache, string tenant, byte[] body,
        Action<HttpRequestMessage>? configure = null, bool expectError = true)
    {
        using var http = (cache ? _cached : _uncached).CreateClient(tenant == "acme" ? AcmeKey : GlobexKey);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        configure?.Invoke(request);
        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        if (!expectError)
        {
            return (response.StatusCode, default);
        }
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var error = JsonDocument.Parse(text).RootElement.GetProperty("error").Clone();
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal(JsonValueKind.String, error.GetProperty("message").ValueKind);
        return (response.StatusCode, error);
    }
}
