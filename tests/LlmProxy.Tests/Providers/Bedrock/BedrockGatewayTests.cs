using System.ClientModel;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using LlmProxy.Hosting;
using LlmProxy.Providers;
using LlmProxy.Providers.Bedrock;
using LlmProxy.Simulator.Bedrock;
using LlmProxy.Tenancy;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OpenAI;
using OpenAI.Chat;
using Xunit;

namespace LlmProxy.Tests.Providers.Bedrock;

/// <summary>
/// The whole path through the gateway (YARP forwarding, per-attempt translation, SigV4 on the final request)
/// against a fake Bedrock Runtime on loopback that checks every signature it receives, with the official
/// OpenAI .NET SDK as the client.
/// </summary>
public sealed class BedrockGatewayTests : IClassFixture<BedrockGatewayTests.Fixture>
{
    private const string ArnModel = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0";
    private readonly Fixture _fixture;

    public BedrockGatewayTests(Fixture fixture) => _fixture = fixture;

    [Fact]
    public async Task ChatCompletion_ThroughGateway_SignedConverseCallTranslatedBack()
    {
        var client = _fixture.ChatClient("claude");

        ChatCompletion completion = await client.CompleteChatAsync([new UserChatMessage("Weather in Paris?")], cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal("Let me check.", completion.Content.Single().Text);
        var call = Assert.Single(completion.ToolCalls);
        Assert.Equal("tooluse_1", call.Id);
        Assert.Equal("get_weather", call.FunctionName);
        Assert.Equal("""{"city":"Paris"}""", call.FunctionArguments.ToString());
        Assert.Equal(ChatFinishReason.ToolCalls, completion.FinishReason);
        Assert.Equal(11, completion.Usage.InputTokenCount);
        Assert.Equal(7, completion.Usage.OutputTokenCount);

        var received = _fixture.Bedrock.Last;
        Assert.True(received.SignatureValid, received.SignatureProblem);
        Assert.Equal("/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
            received.RawTarget);
        Assert.Equal("application/json", received.Accept);
        Assert.Equal("Weather in Paris?", JsonNode.Parse(received.Body)!["messages"]![0]!["content"]![0]!["text"]!.GetValue<string>());
        Assert.DoesNotContain(Fixture.TenantKey, received.AllHeaders); // the client's gateway key never reaches the upstream
    }

    [Fact]
    public async Task StreamingChat_ThroughGateway_EventStreamBecomesOpenAiChunks()
    {
        var client = _fixture.ChatClient("claude");
        var text = new StringBuilder();
        var arguments = new StringBuilder();
        string? toolName = null;
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;

        await foreach (var update in client.CompleteChatStreamingAsync([new UserChatMessage("Stream please")], cancellationToken: TestContext.Current.CancellationToken))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }
            foreach (var tool in update.ToolCallUpdates)
            {
                toolName ??= tool.FunctionName;
                arguments.Append(tool.FunctionArgumentsUpdate?.ToString());
            }
            finish ??= update.FinishReason;
            usage ??= update.Usage;
        }

        Assert.Equal("Hello from a stream.", text.ToString());
        Assert.Equal("get_time", toolName);
        Assert.Equal("""{"tz": "Europe/Paris"}""", arguments.ToString());
        Assert.Equal(ChatFinishReason.ToolCalls, finish);
        Assert.Equal(20, usage?.InputTokenCount);
        Assert.Equal(5, usage?.OutputTokenCount);

        var received = _fixture.Bedrock.Last;
        Assert.True(received.SignatureValid, received.SignatureProblem);
        Assert.EndsWith("/converse-stream", received.RawTarget);
        Assert.Equal("application/vnd.amazon.eventstream", received.Accept);
    }

    [Fact]
    public async Task ChatCompletion_BedrockThrottles_Returns429WithRetryAfter()
    {
        using var response = await _fixture.PostAsync("claude-throttled", """{"model":"claude-throttled","messages":[{"role":"user","content":"Hi"}]}""");

        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(3), response.Headers.RetryAfter?.Delta);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!["error"]!;
        Assert.Equal("rate_limit_exceeded", error["code"]!.GetValue<string>());
    }

    [Fact]
    public async Task ChatCompletion_BedrockValidationError_Returns400WithBedrockMessage()
    {
        using var response = await _fixture.PostAsync("claude-invalid", """{"model":"claude-invalid","messages":[{"role":"user","content":"Hi"}]}""");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!["error"]!;
        Assert.Equal("messages.0.content: text content blocks must be non-empty", error["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task ChatCompletion_NoCredentials_Returns502NamingGatewayCredentialProblem()
    {
        var before = _fixture.Bedrock.Count;

        using var response = await _fixture.PostAsync("claude-nocreds", """{"model":"claude-nocreds","messages":[{"role":"user","content":"Hi"}]}""");

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!["error"]!;
        Assert.Equal("upstream_authentication_failed", error["code"]!.GetValue<string>());
        Assert.Contains("could not obtain AWS credentials", error["message"]!.GetValue<string>());
        Assert.Equal(before, _fixture.Bedrock.Count); // nothing unsigned was sent
    }

    [Fact]
    public async Task ChatCompletion_RemoteImageUrl_Returns400WithoutCallingBedrock()
    {
        var before = _fixture.Bedrock.Count;

        using var response = await _fixture.PostAsync("claude",
            """{"model":"claude","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"http://10.0.0.1/x.png"}}]}]}""");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!["error"]!;
        Assert.Equal("messages[0].content[0].image_url.url", error["param"]!.GetValue<string>());
        Assert.Equal(before, _fixture.Bedrock.Count);
    }

    public sealed class Fixture : IAsyncLifetime
    {
        public const string TenantKey = "sk-bedrock-gateway-test-key-0123456789";
        private static readonly AwsCredentials Credentials = new("AKIDGATEWAYTEST", "gateway-test-secret", "gateway-test-session-token");
        private readonly string _envPrefix = "LLMPROXY_TEST_BEDROCK_" + Guid.NewGuid().ToString("N");
        private WebApplication? _gateway;
        private HttpClient? _http;

        public FakeBedrock Bedrock { get; private set; } = null!;
        public Uri GatewayUri { get; private set; } = null!;

        public async ValueTask InitializeAsync()
        {
            Bedrock = await FakeBedrock.StartAsync(Credentials, "us-east-1");
            Environment.SetEnvironmentVariable(_envPrefix + "_AKID", Credentials.AccessKeyId);
            Environment.SetEnvironmentVariable(_envPrefix + "_SECRET", Credentials.SecretAccessKey);
            Environment.SetEnvironmentVariable(_envPrefix + "_TOKEN", Credentials.SessionToken);

            var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory, EnvironmentName = "Test" });
            builder.Configuration.Sources.Clear();
            var settings = new Dictionary<string, string?>
            {
                ["LlmProxy:Tenants:test:Keys:k1"] = ApiKeyHasher.Hash(TenantKey),
            };
            void Deployment(string model, string id, string upstreamModel, bool staticKeys = true)
            {
                var prefix = $"LlmProxy:Models:{model}:Deployments:{id}:";
                settings[prefix + "Provider"] = "bedrock";
                settings[prefix + "Region"] = "us-east-1";
                settings[prefix + "BaseUrl"] = Bedrock.Url;
                settings[prefix + "UpstreamModel"] = upstreamModel;
                if (staticKeys)
                {
                    settings[prefix + "Settings:AccessKeyIdEnv"] = _envPrefix + "_AKID";
                    settings[prefix + "Settings:SecretAccessKeyEnv"] = _envPrefix + "_SECRET";
                    settings[prefix + "Settings:SessionTokenEnv"] = _envPrefix + "_TOKEN";
                }
            }
            Deployment("claude", "bedrock-claude", ArnModel);
            Deployment("claude-throttled", "bedrock-throttled", "throttled");
            Deployment("claude-invalid", "bedrock-invalid", "invalid");
            Deployment("claude-nocreds", "bedrock-nocreds", "anthropic.claude-v2", staticKeys: false);
            builder.Configuration.AddInMemoryCollection(settings);
            builder.Logging.ClearProviders();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            // Deployments without credential settings use a credential source that finds nothing, like an empty AWS chain.
            builder.Services.AddSingleton<IChatProvider>(new BedrockProvider(TimeProvider.System, NullLoggerFactory.Instance, new EmptyChain()));
            builder.Services.AddLlmProxy(builder.Configuration);

            _gateway = builder.Build();
            _gateway.UseLlmProxy();
            await _gateway.StartAsync(TestContext.Current.CancellationToken);
            GatewayUri = new Uri(_gateway.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
            _http = new HttpClient { BaseAddress = GatewayUri };
        }

        public ChatClient ChatClient(string model) =>
            new(model, new ApiKeyCredential(TenantKey), new OpenAIClientOptions { Endpoint = new Uri(GatewayUri, "/v1") });

        public Task<HttpResponseMessage> PostAsync(string model, string json)
        {
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
            await Bedrock.DisposeAsync();
            Environment.SetEnvironmentVariable(_envPrefix + "_AKID", null);
            Environment.SetEnvironmentVariable(_envPrefix + "_SECRET", null);
            Environment.SetEnvironmentVariable(_envPrefix + "_TOKEN", null);
        }

        private sealed class EmptyChain : IAwsCredentialSource
        {
            public string Description => "the default AWS credential chain";

            public ValueTask<AwsCredentials> GetCredentialsAsync(CancellationToken cancellationToken) =>
                throw new AwsCredentialsUnavailableException("no credentials in environment, profile or instance metadata");
        }
    }
}

/// <summary>What the fake Bedrock received, and whether its SigV4 signature checks out.</summary>
public sealed record ReceivedRequest(string RawTarget, string? Accept, string Body, string AllHeaders, bool SignatureValid, string SignatureProblem);

/// <summary>
/// A Bedrock Runtime stand-in on loopback: verifies each request's SigV4 signature from what arrived on the
/// wire (raw target, headers, body) and answers by model id with a canned Converse response, a ConverseStream
/// event stream (AWS SDK encoder, flushed event by event) or an error.
/// </summary>
public sealed class FakeBedrock : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly List<ReceivedRequest> _received = [];

    private FakeBedrock(WebApplication app) => _app = app;

    public string Url { get; private set; } = "";
    public int Count { get { lock (_received) { return _received.Count; } } }
    public ReceivedRequest Last { get { lock (_received) { return _received[^1]; } } }

    internal static async Task<FakeBedrock> StartAsync(AwsCredentials credentials, string region)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var fake = new FakeBedrock(app);
        app.Run(context => fake.HandleAsync(context, credentials, region));
        await app.StartAsync();
        fake.Url = app.Urls.First();
        return fake;
    }

    private async Task HandleAsync(HttpContext context, AwsCredentials credentials, string region)
    {
        var rawTarget = context.Features.Get<IHttpRequestFeature>()!.RawTarget;
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer);
        var body = buffer.ToArray();
        var problem = CheckSignature(context.Request, rawTarget, body, credentials, region);
        lock (_received)
        {
            _received.Add(new ReceivedRequest(rawTarget, context.Request.Headers.Accept.ToString(), Encoding.UTF8.GetString(body),
                string.Join("\n", context.Request.Headers.Select(h => $"{h.Key}: {h.Value}")), problem is null, problem ?? ""));
        }
        context.Response.Headers["x-amzn-RequestId"] = Guid.NewGuid().ToString();
        if (problem is not null)
        {
            await Error(context, 403, "InvalidSignatureException", problem);
            return;
        }

        var segments = rawTarget.Split('/');
        var model = Uri.UnescapeDataString(segments[2]);
        switch (model)
        {
            case "throttled":
                context.Response.Headers.RetryAfter = "3";
                await Error(context, 429, "ThrottlingException", "Too many requests, please wait before trying again.");
                return;
            case "invalid":
                await Error(context, 400, "ValidationException", "messages.0.content: text content blocks must be non-empty");
                return;
        }

        if (segments[3] == "converse")
        {
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync("""
                {"output":{"message":{"role":"assistant","content":[{"text":"Let me check."},{"toolUse":{"toolUseId":"tooluse_1","name":"get_weather","input":{"city":"Paris"}}}]}},
                 "stopReason":"tool_use","usage":{"inputTokens":11,"outputTokens":7,"totalTokens":18},"metrics":{"latencyMs":100}}
                """);
            return;
        }

        context.Response.ContentType = "application/vnd.amazon.eventstream";
        byte[][] events =
        [
            AwsSdkEventStream.Event("messageStart", """{"role":"assistant"}"""),
            AwsSdkEventStream.Event("contentBlockDelta", """{"contentBlockIndex":0,"delta":{"text":"Hello from "}}"""),
            AwsSdkEventStream.Event("contentBlockDelta", """{"contentBlockIndex":0,"delta":{"text":"a stream."}}"""),
            AwsSdkEventStream.Event("contentBlockStop", """{"contentBlockIndex":0}"""),
            AwsSdkEventStream.Event("contentBlockStart", """{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"tooluse_2","name":"get_time"}}}"""),
            AwsSdkEventStream.Event("contentBlockDelta", """{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"tz\": "}}}"""),
            AwsSdkEventStream.Event("contentBlockDelta", """{"contentBlockIndex":1,"delta":{"toolUse":{"input":"\"Europe/Paris\"}"}}}"""),
            AwsSdkEventStream.Event("contentBlockStop", """{"contentBlockIndex":1}"""),
            AwsSdkEventStream.Event("messageStop", """{"stopReason":"tool_use"}"""),
            AwsSdkEventStream.Event("metadata", """{"usage":{"inputTokens":20,"outputTokens":5,"totalTokens":25},"metrics":{"latencyMs":50}}"""),
        ];
        foreach (var message in events)
        {
            // Write each message in two pieces so the gateway sees frames split across reads.
            await context.Response.Body.WriteAsync(message.AsMemory(0, message.Length / 2));
            await context.Response.Body.FlushAsync();
            await context.Response.Body.WriteAsync(message.AsMemory(message.Length / 2));
            await context.Response.Body.FlushAsync();
        }
    }

    private static Task Error(HttpContext context, int status, string type, string message)
    {
        context.Response.StatusCode = status;
        context.Response.Headers["x-amzn-ErrorType"] = type + ":http://internal.amazon.com/coral/com.amazon.bedrock/";
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync(new JsonObject { ["message"] = message }.ToJsonString());
    }

    /// <summary>Recomputes the signature from the request as received; returns what is wrong, or null.</summary>
    private static string? CheckSignature(HttpRequest request, string rawTarget, byte[] body, AwsCredentials credentials, string region)
    {
        var authorization = request.Headers.Authorization.ToString();
        var signedHeadersStart = authorization.IndexOf("SignedHeaders=", StringComparison.Ordinal);
        if (signedHeadersStart < 0)
        {
            return "no SigV4 Authorization header";
        }
        var signedHeaders = authorization[(signedHeadersStart + "SignedHeaders=".Length)..].Split(',')[0].Split(';');
        var payloadHash = Convert.ToHexStringLower(SHA256.HashData(body));
        if (request.Headers["x-amz-content-sha256"].ToString() != payloadHash)
        {
            return "x-amz-content-sha256 does not match the body";
        }
        foreach (var required in new[] { "host", "x-amz-date", "content-type", "x-amz-security-token" })
        {
            if (!signedHeaders.Contains(required))
            {
                return $"{required} is not signed";
            }
        }
        // The simulator's verifier, written from AWS's rules apart from the signer, at the time the request says it was signed.
        var time = DateTimeOffset.ParseExact(request.Headers["x-amz-date"].ToString(), "yyyyMMdd'T'HHmmss'Z'",
            System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal);
        var verifier = new SigV4Verifier(new Dictionary<string, string> { [credentials.AccessKeyId] = credentials.SecretAccessKey }, "bedrock",
            new FakeTimeProvider(time));
        var q = rawTarget.IndexOf('?');
        var headers = request.Headers.SelectMany(h => h.Value.Select(v => new KeyValuePair<string, string>(h.Key, v ?? ""))).ToList();
        var error = verifier.Verify(new SigV4Request(request.Method, q >= 0 ? rawTarget[..q] : rawTarget, q >= 0 ? rawTarget[(q + 1)..] : "", headers, body));
        if (error is not null)
        {
            return $"{error.Type}: {error.Message}";
        }
        return authorization.Contains($"/{region}/bedrock/aws4_request", StringComparison.Ordinal) ? null : "signed for another region";
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
