using System.Net;
using System.Text;
using LlmProxy.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;

namespace LlmProxy.IntegrationTests.OpenAiApi;

/// <summary>
/// The upstream's key never reaches the client, even from an upstream that repeats it back: in response headers, in an
/// error body (as OpenAI's "Incorrect API key provided: sk-..." does), in a client error the gateway passes through, and
/// in an error event of a stream. The simulator never echoes keys, so this upstream is a small app of the test's own.
/// </summary>
public sealed class UpstreamKeyEchoTests : IAsyncLifetime
{
    private const string TenantKey = "sk-tenant-echo-0123456789";
    private const string UpstreamKey = "sk-upstream-echoed-secret-5566778899";
    private readonly string _keyVariable = "LLMPROXY_TEST_ECHO_KEY_" + Guid.NewGuid().ToString("N");
    private EchoingUpstream _upstream = null!;
    private GatewayHost _gateway = null!;

    public async ValueTask InitializeAsync()
    {
        Environment.SetEnvironmentVariable(_keyVariable, UpstreamKey);
        _upstream = await EchoingUpstream.StartAsync();
        _gateway = await GatewayHost.StartAsync(new GatewaySettings()
            .Tenant("acme", TenantKey)
            .Deployment("gpt-test", "echo", "openai", new Uri(_upstream.BaseAddress, "v1").ToString(), apiKeyEnv: _keyVariable));
    }

    public async ValueTask DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _upstream.DisposeAsync();
        Environment.SetEnvironmentVariable(_keyVariable, null);
    }

    [Theory]
    [InlineData("ok", false, HttpStatusCode.OK)]
    [InlineData("ok", true, HttpStatusCode.OK)]
    [InlineData("unauthorized", false, HttpStatusCode.BadGateway)]
    [InlineData("unauthorized", true, HttpStatusCode.BadGateway)]
    [InlineData("bad-request", false, HttpStatusCode.BadRequest)]
    [InlineData("bad-request", true, HttpStatusCode.BadRequest)]
    [InlineData("stream-error", true, HttpStatusCode.OK)]
    public async Task UpstreamEchoesItsKey_ClientNeverSeesIt(string behaviour, bool stream, HttpStatusCode expected)
    {
        using var http = _gateway.CreateClient(TenantKey);
        var json = $$"""{"model":"gpt-test","stream":{{(stream ? "true" : "false")}},"messages":[{"role":"user","content":"{{behaviour}}"}]}""";

        using var response = await http.PostAsync("/v1/chat/completions", new StringContent(json, Encoding.UTF8, "application/json"));
        var body = await response.Content.ReadAsStringAsync();

        // The upstream did get the key, and did repeat it: otherwise this test could not fail.
        Assert.Equal("Bearer " + UpstreamKey, _upstream.LastAuthorization);
        Assert.Equal(expected, response.StatusCode);
        Assert.DoesNotContain(UpstreamKey, body);
        var headers = response.Headers.Concat(response.Content.Headers).SelectMany(h => h.Value.Select(v => $"{h.Key}: {v}")).ToList();
        Assert.DoesNotContain(headers, h => h.Contains(UpstreamKey, StringComparison.Ordinal));
        Assert.DoesNotContain(_gateway.Logs.Lines, l => l.Contains(UpstreamKey, StringComparison.Ordinal));
        if (behaviour is "bad-request" or "stream-error")
        {
            // The upstream's message still reaches the client (a client error is the client's to fix), with the key masked out.
            Assert.Contains(behaviour == "bad-request" ? "Invalid value for" : "Incorrect API key provided: [redacted]", body);
            Assert.Contains("[redacted]", body);
        }
    }

    /// <summary>An OpenAI-compatible upstream that repeats the key it was given wherever a careless server might.</summary>
    private sealed class EchoingUpstream : IAsyncDisposable
    {
        private readonly WebApplication _app;

        private EchoingUpstream(WebApplication app, Uri baseAddress)
        {
            _app = app;
            BaseAddress = baseAddress;
        }

        public Uri BaseAddress { get; }

        public string? LastAuthorization { get; private set; }

        public static async Task<EchoingUpstream> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.Logging.ClearProviders();
            var app = builder.Build();
            EchoingUpstream? self = null;
            app.MapPost("/v1/chat/completions", async context =>
            {
                var authorization = context.Request.Headers.Authorization.ToString();
                self!.LastAuthorization = authorization;
                var key = authorization.StartsWith("Bearer ", StringComparison.Ordinal) ? authorization[7..] : authorization;
                var request = await new StreamReader(context.Request.Body).ReadToEndAsync();
                var stream = request.Contains("\"stream\":true", StringComparison.Ordinal);
                var response = context.Response;
                response.Headers["x-request-id"] = "req_" + key;
                response.Headers["x-echo-authorization"] = authorization;
                response.Headers["openai-organization"] = key;
                if (request.Contains("unauthorized", StringComparison.Ordinal))
                {
                    await WriteJsonAsync(response, 401, $$$"""{"error":{"message":"Incorrect API key provided: {{{key}}}. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}""");
                }
                else if (request.Contains("bad-request", StringComparison.Ordinal))
                {
                    await WriteJsonAsync(response, 400, $$$"""{"error":{"message":"Invalid value for 'messages' (request authorized by {{{key}}}).","type":"invalid_request_error","param":"messages","code":"invalid_value"}}""");
                }
                else if (!stream)
                {
                    await WriteJsonAsync(response, 200, """{"id":"chatcmpl-echo","object":"chat.completion","created":1,"model":"upstream","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}""");
                }
                else
                {
                    response.ContentType = "text/event-stream";
                    var chunk = """{"id":"chatcmpl-echo","object":"chat.completion.chunk","created":1,"model":"upstream","choices":[{"index":0,"delta":{"role":"assistant","content":"hello"},"finish_reason":null}]}""";
                    await response.WriteAsync($"data: {chunk}\n\n");
                    if (request.Contains("stream-error", StringComparison.Ordinal))
                    {
                        await response.WriteAsync($$$"""data: {"error":{"message":"Incorrect API key provided: {{{key}}}.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}""" + "\n\n");
                        return;
                    }
                    await response.WriteAsync("""data: {"id":"chatcmpl-echo","object":"chat.completion.chunk","created":1,"model":"upstream","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}""" + "\n\n");
                    await response.WriteAsync("""data: {"id":"chatcmpl-echo","object":"chat.completion.chunk","created":1,"model":"upstream","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}""" + "\n\n");
                    await response.WriteAsync("data: [DONE]\n\n");
                }
            });
            await app.StartAsync();
            var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
            self = new EchoingUpstream(app, new Uri(address.TrimEnd('/') + "/"));
            return self;
        }

        private static Task WriteJsonAsync(HttpResponse response, int status, string json)
        {
            response.StatusCode = status;
            response.ContentType = "application/json";
            return response.WriteAsync(json);
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}
