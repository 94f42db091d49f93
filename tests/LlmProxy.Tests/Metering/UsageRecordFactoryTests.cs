using System.Text;
using System.Text.Json.Nodes;
using LlmProxy.Configuration;
using LlmProxy.Forwarding;
using LlmProxy.Metering;
using LlmProxy.OpenAi;
using LlmProxy.Pipeline;
using LlmProxy.Providers;
using LlmProxy.Providers.OpenAi;
using LlmProxy.Tenancy;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace LlmProxy.Tests.Metering;

public sealed class UsageRecordFactoryTests : IDisposable
{
    private readonly TempDirectory _directory = new();
    private readonly GatewayConfigurationProvider _configuration;
    private readonly PriceTableProvider _prices;
    private readonly UsageRecordFactory _factory;
    private readonly TenantIdentity _identity;

    public UsageRecordFactoryTests()
    {
        var options = new LlmProxyOptions
        {
            Tenants = { ["acme"] = new TenantOptions { Keys = { ["key-1"] = ApiKeyHasher.Hash("secret") } } },
            Models =
            {
                ["chat"] = new ModelRouteOptions { Deployments = { ["d1"] = new DeploymentOptions { Provider = "openai", BaseUrl = "http://127.0.0.1:9/v1", UpstreamModel = "gpt-4o" } } },
                ["local"] = new ModelRouteOptions { Deployments = { ["d2"] = new DeploymentOptions { Provider = "openai", BaseUrl = "http://127.0.0.1:9/v1", UpstreamModel = "llama-local" } } },
            },
        };
        _configuration = new GatewayConfigurationProvider(new StaticOptionsMonitor<LlmProxyOptions>(options),
            new GatewayConfigurationBuilder(new ProviderRegistry([new OpenAiProvider()])), MeteringTestData.Log<GatewayConfigurationProvider>());
        File.WriteAllText(Path.Combine(_directory.Path, "pricing.json"),
            """{"prices":[{"provider":"openai","model":"gpt-4o","input_per_million":2.5,"cached_input_per_million":1.25,"output_per_million":10,"effective_date":"2024-10-02"}]}""");
        var metering = MeteringTestData.Options(o =>
        {
            o.PricingFile = "pricing.json";
            o.MaxAgentLength = 16;
        });
        _prices = new PriceTableProvider(metering, new TestHostEnvironment(_directory.Path), MeteringTestData.Metrics(), MeteringTestData.Log<PriceTableProvider>());
        _factory = new UsageRecordFactory(_prices, _configuration, metering);
        _identity = _configuration.Current.KeysByHash.Values.Single();
    }

    public void Dispose()
    {
        _prices.Dispose();
        _configuration.Dispose();
        _directory.Dispose();
    }

    private (ChatContext Chat, DefaultHttpContext Http) Chat(string model = "chat", bool stream = false, string extra = "")
    {
        var http = new DefaultHttpContext { TraceIdentifier = "req_abc" };
        var response = new StartableResponseFeature();
        http.Features.Set<IHttpResponseFeature>(response);
        http.Features.Set(response);
        var json = $$"""{"model":"{{model}}","stream":{{(stream ? "true" : "false")}},"messages":[{"role":"user","content":"0123456789abcdef"}]{{extra}}}""";
        Assert.True(ChatRequestParser.TryParse(Encoding.UTF8.GetBytes(json), out var request, out _));
        var chat = new ChatContext(http, _identity, request!, _configuration.Current.Routes[model]);
        return (chat, http);
    }

    private ChatRequestCompletion Completion(DefaultHttpContext http, ChatContext? chat, int status = 200, string? model = "chat") =>
        new(http, _identity, model, chat, status, TimeSpan.FromMilliseconds(123.4567), MeteringTestData.Start);

    private static void Serve(ChatContext chat, string deployment = "d1")
    {
        chat.Attempts = 1;
        chat.ServedBy = chat.Route.Deployments.Single(d => d.Id == deployment);
        chat.HttpContext.Features.Get<StartableResponseFeature>()!.Start();
    }

    [Fact]
    public void Create_ServedWithUsage_TokensAndCostFromTheUpstream()
    {
        var (chat, http) = Chat();
        Serve(chat);
        chat.Usage = new TokenUsage(1000, 500, 1500, CachedPromptTokens: 400);

        var record = _factory.Create(Completion(http, chat));

        Assert.Equal("req_abc", record.RequestId);
        Assert.Equal(MeteringTestData.Start, record.Timestamp);
        Assert.Equal("acme", record.Tenant);
        Assert.Equal("key-1", record.KeyId);
        Assert.Equal("chat", record.RequestedModel);
        Assert.Equal("openai", record.Provider);
        Assert.Equal("d1", record.Deployment);
        Assert.Equal("gpt-4o", record.UpstreamModel);
        Assert.Equal(1, record.Attempts);
        Assert.Equal((1000, 500, 1500, 400, false), (record.PromptTokens, record.CompletionTokens, record.TotalTokens, record.CachedTokens, record.TokensEstimated));
        Assert.Equal(0.007m, record.CostUsd);
        Assert.Equal(UsageOutcomes.Success, record.Outcome);
        Assert.Null(record.ErrorType);
        Assert.Equal(123.457, record.LatencyMs);
    }

    [Fact]
    public void Create_CacheHit_ZeroTokensAndZeroCost()
    {
        var (chat, http) = Chat();
        chat.CacheHit = true;
        chat.Usage = new TokenUsage(1000, 500, 1500);

        var record = _factory.Create(Completion(http, chat));

        Assert.True(record.CacheHit);
        Assert.Equal((0, 0, 0), (record.PromptTokens, record.CompletionTokens, record.TotalTokens));
        Assert.Equal(0m, record.CostUsd);
        Assert.Equal(0, record.Attempts);
    }

    [Fact]
    public void Create_StreamCutShortWithoutUsage_EstimatesFromRequestAndObservedChunks()
    {
        var (chat, http) = Chat(stream: true);
        var observer = new ResponseUsageObserver(chat);
        http.Features.Set(observer);
        Serve(chat);
        observer.OnChunk(JsonNode.Parse("""{"choices":[{"index":0,"delta":{"content":"12345678"}}]}""")!.AsObject());
        observer.OnChunk(JsonNode.Parse("""{"choices":[{"index":0,"delta":{"content":"1234"}}]}""")!.AsObject());
        chat.ErrorCode = "upstream_stream_interrupted";
        chat.TimeToFirstToken = TimeSpan.FromMilliseconds(42);

        var record = _factory.Create(Completion(http, chat));

        // prompt: 3 + 4 framing + 16 chars (4) = 11; completion: 12 chars = 3
        Assert.Equal((11, 3, 14, true), (record.PromptTokens, record.CompletionTokens, record.TotalTokens, record.TokensEstimated));
        Assert.Equal((11 * 2.5m + 3 * 10m) / 1_000_000m, record.CostUsd);
        Assert.True(record.Streamed);
        Assert.Equal("upstream_stream_interrupted", record.ErrorType);
        Assert.Equal(UsageOutcomes.Error, record.Outcome);
        Assert.Equal(42, record.TimeToFirstTokenMs);
    }

    [Fact]
    public void Create_ClientLeftMidStream_DeploymentFromTheResponseHeaderAndEstimated()
    {
        var (chat, http) = Chat(stream: true);
        var observer = new ResponseUsageObserver(chat);
        http.Features.Set(observer);
        chat.Attempts = 1;
        http.Features.Get<StartableResponseFeature>()!.Start();
        http.Response.Headers[GatewayHeaders.Deployment] = "d1";
        observer.OnChunk(JsonNode.Parse("""{"choices":[{"index":0,"delta":{"content":"12345678"}}]}""")!.AsObject());
        using var aborted = new CancellationTokenSource();
        aborted.Cancel();
        http.RequestAborted = aborted.Token;
        chat.ErrorCode = "client_disconnected";

        var record = _factory.Create(Completion(http, chat));

        Assert.True(record.ClientDisconnected);
        Assert.Equal(UsageOutcomes.ClientDisconnected, record.Outcome);
        Assert.Equal("d1", record.Deployment);
        Assert.Equal("openai", record.Provider);
        Assert.True(record.TokensEstimated);
        Assert.Equal(2, record.CompletionTokens);
        Assert.NotNull(record.CostUsd);
    }

    [Fact]
    public void Create_NonStreamedBodyWithoutUsage_EstimatesCompletionFromTheBody()
    {
        var (chat, http) = Chat();
        var observer = new ResponseUsageObserver(chat);
        http.Features.Set(observer);
        Serve(chat);
        observer.OnResponse(Encoding.UTF8.GetBytes("""{"choices":[{"message":{"role":"assistant","content":"0123456789abcdef"}}]}"""));

        var record = _factory.Create(Completion(http, chat));

        Assert.Equal((11, 4, true), (record.PromptTokens, record.CompletionTokens, record.TokensEstimated));
    }

    [Fact]
    public void Create_UpstreamFailed_NoTokensZeroCostAndTheError()
    {
        var (chat, http) = Chat();
        chat.Attempts = 2;
        chat.ErrorCode = "upstream_error";

        var record = _factory.Create(Completion(http, chat, status: 502));

        Assert.Equal(0, record.TotalTokens);
        Assert.False(record.TokensEstimated);
        Assert.Equal(2, record.Attempts);
        Assert.Equal(0m, record.CostUsd);
        Assert.Null(record.Deployment);
        Assert.Equal(502, record.Status);
        Assert.Equal("upstream_error", record.ErrorType);
        Assert.Equal(UsageOutcomes.Error, record.Outcome);
    }

    [Fact]
    public void Create_RejectedBeforeRouting_ErrorFromTheStatus()
    {
        var http = new DefaultHttpContext { TraceIdentifier = "req_x" };

        var record = _factory.Create(Completion(http, chat: null, status: 404, model: "nope"));

        Assert.Equal("nope", record.RequestedModel);
        Assert.Equal("model_not_found", record.ErrorType);
        Assert.Equal(0m, record.CostUsd);
        Assert.False(record.Streamed);
    }

    [Fact]
    public void Create_UnpricedModel_CostNull()
    {
        var (chat, http) = Chat(model: "local");
        Serve(chat, "d2");
        chat.Usage = new TokenUsage(10, 10, 20);

        Assert.Null(_factory.Create(Completion(http, chat, model: "local")).CostUsd);
    }

    [Fact]
    public void Create_AgentHeader_WinsOverTheUserFieldAndIsCut()
    {
        var (chat, http) = Chat(extra: ""","user":"end-user-42" """);
        http.Request.Headers[UsageRecordFactory.AgentHeader] = "  billing-agent-with-a-long-name\u0007 ";

        Assert.Equal("billing-agent-wi", _factory.Create(Completion(http, chat)).Agent);
    }

    [Fact]
    public void Create_NoAgentHeader_UsesTheUserField()
    {
        var (chat, http) = Chat(extra: ""","user":"end-user-42" """);

        Assert.Equal("end-user-42", _factory.Create(Completion(http, chat)).Agent);
    }

    [Fact]
    public void Create_NoAgentAtAll_Null()
    {
        var (chat, http) = Chat();
        Assert.Null(_factory.Create(Completion(http, chat)).Agent);
    }

    /// <summary>A response feature whose HasStarted can be set, as Kestrel's is once headers are sent.</summary>
    private sealed class StartableResponseFeature : HttpResponseFeature
    {
        private bool _started;

        public void Start() => _started = true;

        public override bool HasStarted => _started;
    }
}

internal sealed class StaticOptionsMonitor<T>(T value) : IOptionsMonitor<T>
{
    public T CurrentValue => value;

    public T Get(string? name) => value;

    public IDisposable? OnChange(Action<T, string?> listener) => null;
}
