using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using LlmProxy.Configuration;
using LlmProxy.Forwarding;
using LlmProxy.Hosting;
using LlmProxy.OpenAi;
using LlmProxy.Providers;
using LlmProxy.Routing;
using LlmProxy.Tenancy;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace LlmProxy.Tests.Forwarding;

/// <summary>
/// What a provider declares through the contract reaches the wire: the headers of its <see cref="UpstreamRequest"/> go to
/// the upstream, and the request id comes back from the header the provider names, not from a list kept by the gateway.
/// A provider registered by a test, a real gateway and an echoing upstream on loopback.
/// </summary>
public sealed class ProviderContractForwardingTests : IClassFixture<ProviderContractForwardingTests.Fixture>
{
    private readonly Fixture _fixture;

    public ProviderContractForwardingTests(Fixture fixture) => _fixture = fixture;

    [Fact]
    public async Task TransformRequest_ProviderRequestHeaders_ReachTheUpstream()
    {
        using var response = await _fixture.PostAsync("ok");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var received = _fixture.Upstream.Last;
        Assert.Equal("2023-06-01", received.GetValueOrDefault("x-api-version"));
        Assert.Equal("tools-2024", received.GetValueOrDefault("x-beta"));
        // Set before the authenticator: the credential wins over a provider header of the same name.
        Assert.Equal("Bearer upstream-secret", received.GetValueOrDefault("Authorization"));
    }

    [Fact]
    public async Task TransformResponse_ProviderRequestIdHeader_PassedToTheClient()
    {
        using var response = await _fixture.PostAsync("ok");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        // The upstream also sends x-request-id; the provider named x-echo-request-id, so that one is passed on.
        Assert.Equal("echo-ok-1", Assert.Single(response.Headers.GetValues(GatewayHeaders.UpstreamRequestId)));
    }

    [Fact]
    public async Task TransformResponse_UpstreamErrorWithProviderRequestId_PassedToTheClient()
    {
        using var response = await _fixture.PostAsync("reject");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("echo-reject-1", Assert.Single(response.Headers.GetValues(GatewayHeaders.UpstreamRequestId)));
    }

    public sealed class Fixture : IAsyncLifetime
    {
        private const string TenantKey = "sk-contract-test-key-0123456789";
        private WebApplication? _gateway;
        private HttpClient? _http;

        public EchoUpstream Upstream { get; private set; } = null!;

        public async ValueTask InitializeAsync()
        {
            Upstream = await EchoUpstream.StartAsync();
            var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory, EnvironmentName = "Test" });
            builder.Configuration.Sources.Clear();
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["LlmProxy:Tenants:test:Keys:k1"] = ApiKeyHasher.Hash(TenantKey),
                ["LlmProxy:Models:echo:Deployments:echo-1:Provider"] = ContractProvider.ProviderName,
                ["LlmProxy:Models:echo:Deployments:echo-1:BaseUrl"] = Upstream.Url,
            });
            builder.Logging.ClearProviders();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.Services.AddSingleton<IChatProvider, ContractProvider>();
            builder.Services.AddLlmProxy(builder.Configuration);
            _gateway = builder.Build();
            _gateway.UseLlmProxy();
            await _gateway.StartAsync(TestContext.Current.CancellationToken);
            var address = _gateway.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            _http = new HttpClient { BaseAddress = new Uri(address) };
        }

        /// <summary>Posts a chat request whose only message tells the echo upstream how to answer.</summary>
        public Task<HttpResponseMessage> PostAsync(string answer)
        {
            var json = $$"""{"model":"echo","messages":[{"role":"user","content":"{{answer}}"}]}""";
            var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(json, Encoding.UTF8, "application/json") };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", TenantKey);
            return _http!.SendAsync(request, TestContext.Current.CancellationToken);
        }

        public async ValueTask DisposeAsync()
        {
            _http?.Dispose();
            if (_gateway is not null)
            {
                await _gateway.DisposeAsync();
            }
            await Upstream.DisposeAsync();
        }
    }

    /// <summary>A provider as a new one would be written: headers on its requests, its own request-id header.</summary>
    private sealed class ContractProvider : IChatProvider
    {
        public const string ProviderName = "contract-test";
        private static readonly string[] RequestIdHeaders = ["x-echo-request-id"];

        public string Name => ProviderName;
        public IReadOnlyList<string> UpstreamRequestIdHeaders => RequestIdHeaders;
        public void Validate(string path, DeploymentOptions options, ICollection<string> errors) { }
        public Uri GetBaseUri(DeploymentOptions options) => new(options.BaseUrl!, UriKind.Absolute);
        public IUpstreamAuthenticator CreateAuthenticator(string deploymentId, DeploymentOptions options) => new FixedKeyAuthenticator();
        public IChatTranslator CreateTranslator(ChatRequest request, Deployment deployment) => new Translator(request, deployment);

        private sealed class Translator(ChatRequest request, Deployment deployment) : IChatTranslator
        {
            public UpstreamRequest TranslateRequest() =>
                new("/chat", Encoding.UTF8.GetBytes(request.Messages[0]!["content"]!.GetValue<string>()), "text/plain")
                {
                    Headers = [new("x-api-version", "2023-06-01"), new("x-beta", "tools-2024"), new("Authorization", "Bearer not-the-credential")],
                };

            public TranslatedResponse TranslateResponse(ReadOnlySpan<byte> upstreamBody) => new(upstreamBody.ToArray(), null);

            public UpstreamFailure TranslateError(HttpResponseMessage response, ReadOnlySpan<byte> upstreamBody) =>
                UpstreamFailure.FromStatus((int)response.StatusCode, deployment.Id, null, null);

            public IChatStreamTranslator CreateStreamTranslator() => throw new NotSupportedException("The test sends no streamed requests.");
        }

        private sealed class FixedKeyAuthenticator : IUpstreamAuthenticator
        {
            public string? UnavailableReason => null;

            public ValueTask AuthenticateAsync(HttpRequestMessage request, ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "upstream-secret");
                return ValueTask.CompletedTask;
            }
        }
    }

    /// <summary>
    /// Records each request's headers and answers by body: <c>ok</c> is a chat completion, anything else a 400. Every answer
    /// carries <c>x-request-id</c> and <c>x-echo-request-id</c> with different values.
    /// </summary>
    public sealed class EchoUpstream : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private readonly ConcurrentQueue<Dictionary<string, string>> _received = new();
        private int _count;

        private EchoUpstream(WebApplication app) => _app = app;

        public string Url { get; private set; } = "";

        public Dictionary<string, string> Last => _received.Last();

        public static async Task<EchoUpstream> StartAsync()
        {
            var builder = WebApplication.CreateBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            var app = builder.Build();
            var upstream = new EchoUpstream(app);
            app.MapPost("/chat", async (HttpContext context) =>
            {
                upstream._received.Enqueue(context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase));
                using var reader = new StreamReader(context.Request.Body);
                var answer = await reader.ReadToEndAsync();
                var n = Interlocked.Increment(ref upstream._count);
                context.Response.Headers["x-request-id"] = $"req-{n}";
                context.Response.Headers["x-echo-request-id"] = $"echo-{answer}-1";
                if (answer != "ok")
                {
                    context.Response.StatusCode = StatusCodes.Status400BadRequest;
                    await context.Response.WriteAsJsonAsync(new { error = new { message = "rejected" } });
                    return;
                }
                context.Response.ContentType = "application/json";
                await context.Response.WriteAsync(JsonSerializer.Serialize(new
                {
                    id = "chatcmpl-1", @object = "chat.completion", created = 1, model = "echo",
                    choices = new[] { new { index = 0, message = new { role = "assistant", content = "ok" }, finish_reason = "stop" } },
                }));
            });
            await app.StartAsync();
            upstream.Url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            return upstream;
        }

        public ValueTask DisposeAsync() => _app.DisposeAsync();
    }
}
