using System.Text;
using LlmProxy.Hosting;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Simulator;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace LlmProxy.IntegrationTests.Hosting;

/// <summary>
/// What a client sees when its request is refused before any endpoint runs, sent on a raw socket to a real Kestrel:
/// within the server's hard ceiling an OpenAI-shaped JSON body; beyond it, and for request or header lines the server
/// cannot parse, the server's own empty answer (as the README says).
/// </summary>
public sealed class RequestLimitsTests : IAsyncLifetime
{
    private const string TenantKey = "sk-limits-tenant-0123456789";
    private SimulatorServer _simulator = null!;
    private GatewayHost _gateway = null!;

    public async ValueTask InitializeAsync()
    {
        _simulator = await SimulatorServer.StartAsync(new SimulatorOptions());
        _gateway = await GatewayHost.StartAsync(new GatewaySettings()
                .Tenant("acme", TenantKey)
                .OpenAi("gpt-test", "sim", _simulator.BaseAddress)
                .Set("LlmProxy:MaxRequestBodyBytes", "1000"),
            // The slowest body the server accepts, with the shortest grace period it allows: a stalled body times out in about 2 s.
            configureServices: s => s.Configure<KestrelServerOptions>(k => k.Limits.MinRequestBodyDataRate = new MinDataRate(240, TimeSpan.FromSeconds(2))));
    }

    public async ValueTask DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _simulator.DisposeAsync();
    }

    private Task<RawHttp.Response> GetAsync(string target, string extraHeaders = "") =>
        RawHttp.SendAsync(_gateway.BaseAddress, $"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer {TenantKey}\r\n{extraHeaders}\r\n");

    [Fact]
    public async Task Url_9KB_Answers414InOpenAiShape()
    {
        var response = await GetAsync("/v1/models?q=" + new string('a', 9 * 1000));

        Assert.Equal(414, response.Status);
        Assert.Equal("url_too_long", response.Error().GetProperty("code").GetString());
        Assert.NotNull(response.Header("x-request-id"));
    }

    [Fact]
    public async Task Url_AtTheDocumentedLimit_IsServed()
    {
        var prefix = "/v1/models?q=";
        var response = await GetAsync(prefix + new string('a', RequestLimits.MaxRequestTargetBytes - prefix.Length));

        Assert.Equal(200, response.Status);
    }

    [Fact]
    public async Task Header_64KiB_Answers431InOpenAiShape()
    {
        var response = await GetAsync("/v1/models", $"X-Big: {new string('b', 64 * 1024)}\r\n");

        Assert.Equal(431, response.Status);
        var error = response.Error();
        Assert.Equal("request_headers_too_large", error.GetProperty("code").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
    }

    [Fact]
    public async Task HeaderCount_OverTheDocumentedLimit_Answers431InOpenAiShape()
    {
        var headers = string.Concat(Enumerable.Range(0, RequestLimits.MaxRequestHeaderCount + 1).Select(i => $"X-H{i}: v\r\n"));

        var response = await GetAsync("/v1/models", headers);

        Assert.Equal(431, response.Status);
        Assert.Equal("request_headers_too_large", response.Error().GetProperty("code").GetString());
    }

    [Fact]
    public async Task Headers_WithinTheDocumentedLimits_AreServed()
    {
        var headers = string.Concat(Enumerable.Range(0, 90).Select(i => $"X-H{i}: {new string('v', 300)}\r\n"));

        var response = await GetAsync("/v1/models", headers);

        Assert.Equal(200, response.Status);
    }

    [Fact]
    public async Task Header_OverTheServerCeiling_ServerAnswers431WithEmptyBody()
    {
        var response = await GetAsync("/v1/models", $"X-Big: {new string('b', RequestLimits.ServerMaxRequestHeadersTotalBytes)}\r\n");

        // Kestrel refuses it before any gateway code runs; no hook can give this answer a body.
        Assert.Equal(431, response.Status);
        Assert.Equal("", response.Body);
    }

    [Fact]
    public async Task Url_OverTheServerCeiling_ServerAnswers414WithEmptyBody()
    {
        var response = await GetAsync("/v1/models?q=" + new string('a', RequestLimits.ServerMaxRequestLineBytes));

        Assert.Equal(414, response.Status);
        Assert.Equal("", response.Body);
    }

    [Fact]
    public async Task HeaderLineWithoutColon_ServerAnswers400WithEmptyBody()
    {
        var response = await GetAsync("/v1/models", "NoColonHere\r\n");

        Assert.Equal(400, response.Status);
        Assert.Equal("", response.Body);
    }

    [Fact]
    public async Task ChunkedBody_BadFraming_Answers400InOpenAiShape()
    {
        var response = await RawHttp.SendAsync(_gateway.BaseAddress,
            $"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TenantKey}\r\nContent-Type: application/json\r\n"
            + "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n");

        Assert.Equal(400, response.Status);
        Assert.Equal("bad_request", response.Error().GetProperty("code").GetString());
    }

    [Fact]
    public async Task ChunkedBody_OverMaxRequestBodyBytes_Answers413InOpenAiShape()
    {
        var chunk = new string('x', 2000);
        var response = await RawHttp.SendAsync(_gateway.BaseAddress,
            $"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TenantKey}\r\nContent-Type: application/json\r\n"
            + $"Transfer-Encoding: chunked\r\n\r\n{chunk.Length:x}\r\n{chunk}\r\n0\r\n\r\n");

        Assert.Equal(413, response.Status);
        Assert.Equal("request_too_large", response.Error().GetProperty("code").GetString());
    }

    [Fact]
    public async Task Body_StalledBelowTheMinimumRate_Answers408InOpenAiShape()
    {
        var head = $"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TenantKey}\r\nContent-Type: application/json\r\n"
            + "Content-Length: 900\r\n\r\n{\"model\":";

        // Nothing more is sent; the response (or the server closing) ends the wait.
        var response = await RawHttp.SendAsync(_gateway.BaseAddress, Encoding.ASCII.GetBytes(head));

        Assert.Equal(408, response.Status);
        Assert.Equal("bad_request", response.Error().GetProperty("code").GetString());
    }
}
