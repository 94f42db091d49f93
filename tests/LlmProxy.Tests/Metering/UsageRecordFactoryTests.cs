using System.Text;
using System.Text.Json;
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
using Microsoft.ML.Tokenizers;

namespace LlmProxy.Tests.Metering;

public sealed class UsageRecordFactoryTests : IDisposable
{
    private readonly TempDirectory _directory = new();
    private readonly GatewayConfigurationProvider _configuration;
    private readonly PriceTableProvider _prices;
    private readonly UsageRecordFactory _factory;
    private readonly TenantIdentity _identity;
    private readonly OpenAiTokenizers _tokenizers = new();

    public UsageRecordFactoryTests()
    {
        var options = new LlmProxyOptions
        {
            Tenants = { ["acme"] = new TenantOptions { Keys = { ["key-1"] = ApiKeyHasher.Hash("secret") } } },
            Models =
            {
                ["chat"] = new ModelRouteOptions { Deployments = { ["d1"] = new DeploymentOptions { Provider = "openai", BaseUrl = "http://127.0.0.1:9/v1", UpstreamModel = "gpt-4o" } } },
                ["local"] = new ModelRouteOptions { Deployments = { ["d2"] = new DeploymentOptions { Provider = "openai", BaseUrl = "http://127.0.0.1:9/v1", UpstreamModel = "llama-local" } } },
                ["legacy"] = new ModelRouteOptions { Deployments = { ["d3"] = new DeploymentOptions { Provider = "openai", BaseUrl = "http://127.0.0.1:9/v1", UpstreamModel = "gpt-3.5-turbo" } } },
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
        _factory = new UsageRecordFactory(_prices, _configuration, metering, _tokenizers);
        _identity = _configuration.Current.KeysByHash.Values.Single();
    }

    public void Dispose()
    {
        _prices.Dispose();
        _configuration.Dispose();
        _directory.Dispose();
    }

    private (ChatContext Chat, DefaultHttpContext Http) Chat(string model = "chat", bool stream = false, string extra = "", string content = "0123456789abcdef")
    {
        var http = new DefaultHttpContext { TraceIdentifier = "req_abc" };
        var response = new StartableResponseFeature();
        http.Features.Set<IHttpResponseFeature>(response);
        http.Features.Set(response);
        var json = $$"""{"model":"{{model}}","stream":{{(stream ? "true" : "false")}},"messages":[{"role":"user","content":{{JsonSerializer.Serialize(content)}}}]{{extra}}}""";
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
    public void Create_NonOpenAiStreamCutShortWithoutUsage_EstimatesFromRequestAndObservedChunksAtFourCharactersAToken()
    {
        var (chat, http) = Chat(model: "local", stream: true);
        var observer = new ResponseUsageObserver(chat);
        http.Features.Set(observer);
        Serve(chat, "d2");
        observer.OnChunk(JsonNode.Parse("""{"choices":[{"index":0,"delta":{"content":"12345678"}}]}""")!.AsObject());
        observer.OnChunk(JsonNode.Parse("""{"choices":[{"index":0,"delta":{"content":"1234"}}]}""")!.AsObject());
        chat.ErrorCode = "upstream_stream_interrupted";
        chat.TimeToFirstToken = TimeSpan.FromMilliseconds(42);

        var record = _factory.Create(Completion(http, chat, model: "local"));

        // prompt: 3 + 4 framing + 16 chars (4) = 11; completion: 12 chars = 3
        Assert.Equal((11, 3, 14, true), (record.PromptTokens, record.CompletionTokens, record.TotalTokens, record.TokensEstimated));
        Assert.Null(record.CostUsd); // no price for the local model
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
        Assert.Equal(TiktokenTokenizer.CreateForEncoding("o200k_base").CountTokens("12345678"), record.CompletionTokens);
        Assert.NotNull(record.CostUsd);
    }

    [Fact]
    public void Create_NonOpenAiBodyWithoutUsage_EstimatesCompletionFromTheBody()
    {
        var (chat, http) = Chat(model: "local");
        var observer = new ResponseUsageObserver(chat);
        http.Features.Set(observer);
        Serve(chat, "d2");
        observer.OnResponse(Encoding.UTF8.GetBytes("""{"choices":[{"message":{"role":"assistant","content":"0123456789abcdef"}}]}"""));

        var record = _factory.Create(Completion(http, chat, model: "local"));

        Assert.Equal((11, 4, true), (record.PromptTokens, record.CompletionTokens, record.TokensEstimated));
    }

    /// <summary>Text of three kinds the four-characters rule gets wrong in different directions.</summary>
    private static readonly Dictionary<string, string> Samples = new()
    {
        ["english"] = "A reverse proxy for language models sits between the applications of a company and the providers it buys tokens from. "
            + "It checks every request against the tenant's keys and budgets, picks a deployment that is healthy, retries another one when "
            + "the first fails, and writes down what each call cost. When the upstream forgets to report how many tokens it used, the "
            + "gateway still has to put a number in the ledger, because finance reconciles the invoice against it at the end of the month.",
        ["code"] = "for (int i = 0; i < n; i++)\n{\n    sum[i] = a[i] * b[i] + c[i] - (d[i] >> 2);\n    if (sum[i] > max) { max = sum[i]; at = i; }\n}\n"
            + "return (max, at, sum[..n].Average());\n\ndef crc(data: bytes) -> int:\n    c = 0xFFFFFFFF\n    for b in data:\n        c ^= b\n"
            + "        for _ in range(8):\n            c = (c >> 1) ^ (0xEDB88320 & -(c & 1))\n    return c ^ 0xFFFFFFFF\n\n"
            + "print(hex(crc(b\"hello\")), [x**2 for x in range(10) if x % 3 == 0])\n",
        ["cjk"] = "網關位於公司的應用程式與模型供應商之間。每個請求都會先檢查租戶的金鑰與預算，再挑選一個健康的部署；如果第一個部署失敗，"
            + "就改試另一個，並記錄每次呼叫的費用。上游沒有回報用量時，網關仍然必須在帳本裡寫下一個數字，因為財務部門會在月底用它來核對發票。"
            + "東京の開発チームも同じゲートウェイを使っており、日本語の問い合わせが毎日数千件届きます。",
    };

    public static TheoryData<string, string, string, string, bool> OpenAiEstimateCases()
    {
        var cases = new TheoryData<string, string, string, string, bool>();
        foreach (var sample in Samples.Keys)
        {
            foreach (var streamed in new[] { true, false })
            {
                cases.Add(sample, "chat", "d1", "o200k_base", streamed);   // gpt-4o
                cases.Add(sample, "legacy", "d3", "cl100k_base", streamed); // gpt-3.5-turbo
            }
        }
        return cases;
    }

    [Theory]
    [MemberData(nameof(OpenAiEstimateCases))]
    public void Create_OpenAiModelWithoutUsage_TokensWithinFivePercentOfTheTokenizerWhereFourCharactersATokenIsNot(
        string sample, string model, string deployment, string encoding, bool streamed)
    {
        var text = Samples[sample];
        var (chat, http) = Chat(model, stream: streamed, content: text);
        var observer = new ResponseUsageObserver(chat);
        http.Features.Set(observer);
        Serve(chat, deployment);
        if (streamed)
        {
            // The stream is cut short after the text: every chunk carries a few characters, the way models stream.
            for (var at = 0; at < text.Length; at += 7)
            {
                var piece = new JsonObject { ["content"] = text.Substring(at, Math.Min(7, text.Length - at)) };
                observer.OnChunk(new JsonObject { ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = piece }) });
            }
            chat.ErrorCode = "upstream_stream_interrupted";
        }
        else
        {
            var body = new JsonObject { ["choices"] = new JsonArray(new JsonObject { ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = text } }) };
            observer.OnResponse(Encoding.UTF8.GetBytes(body.ToJsonString()));
        }

        var record = _factory.Create(Completion(http, chat, model: model));

        // An independent count: the encoding itself, and OpenAI's chat framing (3 tokens a message plus its role, 3 to prime the reply).
        var reference = TiktokenTokenizer.CreateForEncoding(encoding);
        var completion = reference.CountTokens(text);
        var prompt = 3 + reference.CountTokens("user") + completion + 3;
        var fourCharacters = (text.Length + 3) / 4;
        Assert.True(record.TokensEstimated);
        Assert.InRange(record.CompletionTokens, completion * 0.95, completion * 1.05);
        Assert.InRange(record.PromptTokens, prompt * 0.95, prompt * 1.05);
        Assert.True(Math.Abs(fourCharacters - completion) > completion * 0.05,
            $"the four-characters rule ({fourCharacters}) is within 5% of {completion} tokens: the sample does not tell the estimates apart");
    }

    [Fact]
    public void Create_UsageReportedOrNotAnOpenAiModel_NoTokenizerIsLoaded()
    {
        var (reported, reportedHttp) = Chat(stream: true);
        reportedHttp.Features.Set(new ResponseUsageObserver(reported));
        Serve(reported);
        reported.Usage = new TokenUsage(10, 20, 30);
        _factory.Create(Completion(reportedHttp, reported));

        var (local, localHttp) = Chat(model: "local", stream: true);
        localHttp.Features.Set(new ResponseUsageObserver(local));
        Serve(local, "d2");
        Assert.True(_factory.Create(Completion(localHttp, local, model: "local")).TokensEstimated);

        Assert.Equal(0, _tokenizers.Loaded);

        var (cut, cutHttp) = Chat(stream: true);
        cutHttp.Features.Set(new ResponseUsageObserver(cut));
        Serve(cut);
        Assert.True(_factory.Create(Completion(cutHttp, cut)).TokensEstimated);

        Assert.Equal(1, _tokenizers.Loaded);
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
