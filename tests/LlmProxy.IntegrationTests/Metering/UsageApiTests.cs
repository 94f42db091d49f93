using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Metering;
using LlmProxy.Simulator;

namespace LlmProxy.IntegrationTests.Metering;

/// <summary>The usage API over real records: numbers equal to the records, tenants kept apart, admins see all.</summary>
[Collection(MeteringCollection.Name)]
public sealed class UsageApiTests : IAsyncLifetime
{
    private const string KeyA = "sk-tenant-alpha-api-0123456";
    private const string KeyB = "sk-tenant-bravo-api-0123456";
    private SimulatorServer _simulator = null!;
    private MeteredGateway _metered = null!;
    private HttpClient _alpha = null!;
    private HttpClient _bravo = null!;
    private List<UsageRecord> _alphaRecords = null!;

    public async ValueTask InitializeAsync()
    {
        _simulator = await SimulatorServer.StartAsync(new SimulatorOptions());
        _metered = await MeteredGateway.StartAsync(new GatewaySettings()
            .Tenant("alpha", KeyA)
            .Tenant("bravo", KeyB)
            .OpenAi("chat", "sim-chat", _simulator.BaseAddress, configure: d => d.Set("UpstreamModel", MeteredGateway.PricedModel))
            .OpenAi("cheap", "sim-cheap", _simulator.BaseAddress, configure: d => d.Set("UpstreamModel", MeteredGateway.CheapModel))
            .OpenAi("free", "sim-free", _simulator.BaseAddress, configure: d => d.Set("UpstreamModel", "sim-unpriced")));
        _alpha = _metered.Gateway.CreateClient(KeyA);
        _bravo = _metered.Gateway.CreateClient(KeyB);

        await SendAsync(_alpha, "chat", "one two three", agent: "billing-bot");
        await SendAsync(_alpha, "chat", "four five", agent: "billing-bot", stream: true);
        await SendAsync(_alpha, "cheap", "six", agent: "support-bot");
        await SendAsync(_alpha, "nope", "x");
        await SendAsync(_bravo, "chat", "bravo's secret question with many words in it");
        _alphaRecords = await _metered.WaitForRecordsAsync("alpha", 4);
        await _metered.WaitForRecordsAsync("bravo", 1);
    }

    public async ValueTask DisposeAsync()
    {
        _alpha.Dispose();
        _bravo.Dispose();
        await _metered.DisposeAsync();
        await _simulator.DisposeAsync();
    }

    private static async Task SendAsync(HttpClient http, string model, string text, string? agent = null, bool stream = false)
    {
        var body = new JsonObject { ["model"] = model, ["stream"] = stream, ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = text }) };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json") };
        if (agent is not null)
        {
            request.Headers.Add(UsageRecordFactory.AgentHeader, agent);
        }
        using var response = await http.SendAsync(request);
        await response.Content.ReadAsStringAsync();
    }

    private static string Range => UsageAccountingTests.Around();

    private HttpClient Admin(string? key = MeteredGateway.AdminKey)
    {
        var client = _metered.Gateway.CreateClient();
        if (key is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }
        return client;
    }

    [Fact]
    public async Task Usage_TenantKey_TotalsEqualItsRecords()
    {
        var report = await UsageAccountingTests.GetJsonAsync(_alpha, $"/v1/usage?{Range}");
        var totals = report["totals"]!;

        Assert.Equal("usage.report", report["object"]!.GetValue<string>());
        Assert.Equal("alpha", report["tenant"]!.GetValue<string>());
        Assert.Equal(4, totals["requests"]!.GetValue<long>());
        Assert.Equal(3, totals["succeeded"]!.GetValue<long>());
        Assert.Equal(1, totals["failed"]!.GetValue<long>());
        Assert.Equal(0.75, totals["success_rate"]!.GetValue<double>());
        Assert.Equal(0, totals["cache_hit_rate"]!.GetValue<double>());
        Assert.Equal(_alphaRecords.Sum(r => (long)r.PromptTokens), totals["prompt_tokens"]!.GetValue<long>());
        Assert.Equal(_alphaRecords.Sum(r => (long)r.CompletionTokens), totals["completion_tokens"]!.GetValue<long>());
        Assert.Equal(_alphaRecords.Sum(r => (long)r.TotalTokens), totals["total_tokens"]!.GetValue<long>());
        Assert.Equal(_alphaRecords.Sum(r => r.CostUsd ?? 0), totals["cost_usd"]!.GetValue<decimal>());
        Assert.Equal(Math.Round(_alphaRecords.Average(r => r.LatencyMs), 3), totals["average_latency_ms"]!.GetValue<double>());
        Assert.Equal(Math.Round(_alphaRecords.Average(r => (double)r.TotalTokens), 3), totals["average_tokens_per_request"]!.GetValue<double>());
        Assert.Equal(Math.Round(_alphaRecords.Sum(r => r.CostUsd ?? 0) / 4, 10), totals["average_cost_usd_per_request"]!.GetValue<decimal>());
        Assert.Empty(report["data"]!.AsArray());
    }

    [Fact]
    public async Task Usage_GroupByModelAgentAndDay_GroupsAddUpToTheRecords()
    {
        var byModel = await UsageAccountingTests.GetJsonAsync(_alpha, $"/v1/usage?{Range}&group_by=model");
        var groups = byModel["data"]!.AsArray().ToDictionary(g => g!["group"]!.GetValue<string>(), g => g!);
        Assert.Equal(["chat", "cheap", "nope"], groups.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(2, groups["chat"]["requests"]!.GetValue<long>());
        Assert.Equal(_alphaRecords.Where(r => r.RequestedModel == "chat").Sum(r => r.CostUsd ?? 0), groups["chat"]["cost_usd"]!.GetValue<decimal>());
        Assert.Equal(_alphaRecords.Where(r => r.RequestedModel == "cheap").Sum(r => r.CostUsd ?? 0), groups["cheap"]["cost_usd"]!.GetValue<decimal>());
        Assert.Equal(1, groups["nope"]["failed"]!.GetValue<long>());

        var byAgent = await UsageAccountingTests.GetJsonAsync(_alpha, $"/v1/usage?{Range}&group_by=agent");
        var agents = byAgent["data"]!.AsArray().ToDictionary(g => g!["group"]!.GetValue<string>(), g => g!["requests"]!.GetValue<long>());
        Assert.Equal(new Dictionary<string, long> { ["billing-bot"] = 2, ["support-bot"] = 1, ["none"] = 1 }, agents);

        var byDay = await UsageAccountingTests.GetJsonAsync(_alpha, $"/v1/usage?{Range}&group_by=day");
        Assert.Equal(4, byDay["data"]!.AsArray().Sum(g => g!["requests"]!.GetValue<long>()));

        var byProvider = await UsageAccountingTests.GetJsonAsync(_alpha, $"/v1/usage?{Range}&group_by=provider");
        Assert.Equal(3, byProvider["data"]!.AsArray().Single(g => g!["group"]!.GetValue<string>() == "openai")!["requests"]!.GetValue<long>());
    }

    [Fact]
    public async Task Usage_FilteredByAgentAndModel()
    {
        var agent = await UsageAccountingTests.GetJsonAsync(_alpha, $"/v1/usage?{Range}&agent=billing-bot");
        Assert.Equal(2, agent["totals"]!["requests"]!.GetValue<long>());
        Assert.Equal("billing-bot", agent["agent"]!.GetValue<string>());

        var model = await UsageAccountingTests.GetJsonAsync(_alpha, $"/v1/usage?{Range}&model=cheap");
        Assert.Equal(1, model["totals"]!["requests"]!.GetValue<long>());
    }

    [Fact]
    public async Task Usage_TenantAlpha_NeverSeesBravo()
    {
        var alpha = await UsageAccountingTests.GetJsonAsync(_alpha, $"/v1/usage?{Range}");
        var bravo = await UsageAccountingTests.GetJsonAsync(_bravo, $"/v1/usage?{Range}");
        Assert.Equal(4, alpha["totals"]!["requests"]!.GetValue<long>());
        Assert.Equal(1, bravo["totals"]!["requests"]!.GetValue<long>());

        // Asking for another tenant is refused, on the tenant endpoint and on the admin one.
        using var named = await _alpha.GetAsync($"/v1/usage?{Range}&tenant=bravo", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.BadRequest, named.StatusCode);
        using var admin = await _alpha.GetAsync($"/admin/usage?tenant=bravo", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Unauthorized, admin.StatusCode);
        using var anonymous = await Admin(key: null).GetAsync($"/v1/usage", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
    }

    [Fact]
    public async Task AdminUsage_AnyTenantOrAll()
    {
        using var admin = Admin();

        var bravo = await UsageAccountingTests.GetJsonAsync(admin, $"/admin/usage?{Range}&tenant=bravo");
        Assert.Equal("bravo", bravo["tenant"]!.GetValue<string>());
        Assert.Equal(1, bravo["totals"]!["requests"]!.GetValue<long>());

        var all = await UsageAccountingTests.GetJsonAsync(admin, $"/admin/usage?{Range}&group_by=tenant");
        Assert.Equal(5, all["totals"]!["requests"]!.GetValue<long>());
        var tenants = all["data"]!.AsArray().ToDictionary(g => g!["group"]!.GetValue<string>(), g => g!["requests"]!.GetValue<long>());
        Assert.Equal(new Dictionary<string, long> { ["alpha"] = 4, ["bravo"] = 1 }, tenants);

        using var wrongKey = await Admin("sk-not-an-admin").GetAsync("/admin/usage", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Unauthorized, wrongKey.StatusCode);
    }

    [Theory]
    [InlineData("from=yesterday", "from")]
    [InlineData("from=2026-11-08&to=2026-11-01", "from")]
    [InlineData("group_by=colour", "group_by")]
    [InlineData("from=2020-01-01&to=2026-01-01", "to")]
    public async Task Usage_BadParameters_OpenAiShaped400(string query, string param)
    {
        using var response = await _alpha.GetAsync("/v1/usage?" + query, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!["error"]!;
        Assert.Equal("invalid_request_error", error["type"]!.GetValue<string>());
        Assert.Equal(param, error["param"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(error["message"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Pricing_ListsThePricingFile()
    {
        var list = await UsageAccountingTests.GetJsonAsync(_alpha, "/v1/pricing");

        var chat = list["data"]!.AsArray().Single(p => p!["model"]!.GetValue<string>() == MeteredGateway.PricedModel)!;
        Assert.Equal(MeteredGateway.PricedInput, chat["input_per_million"]!.GetValue<decimal>());
        Assert.Equal(MeteredGateway.PricedOutput, chat["output_per_million"]!.GetValue<decimal>());
        Assert.Equal("2024-01-01", chat["effective_date"]!.GetValue<string>());
        Assert.True(chat["current"]!.GetValue<bool>());
    }

    [Fact]
    public async Task PricingCompare_NamesTheCheapestWithHandComputedCosts()
    {
        var comparison = await UsageAccountingTests.GetJsonAsync(_alpha,
            $"/v1/pricing/compare?input_tokens=1000000&output_tokens=500000&cached_tokens=200000&models={MeteredGateway.PricedModel},chat,{MeteredGateway.CheapModel}");

        // sim-chat: 800k × 2.50 + 200k × 1.25 + 500k × 10 = 2 + 0.25 + 5 = 7.25; sim-cheap: 1M × 1 + 500k × 2 = 2
        // ("chat" is this gateway's name for sim-chat: priced through its deployment, listed once.)
        var costs = comparison["data"]!.AsArray().ToDictionary(c => c!["model"]!.GetValue<string>(), c => c!["cost_usd"]!.GetValue<decimal>());
        Assert.Equal(new Dictionary<string, decimal> { [MeteredGateway.CheapModel] = 2m, [MeteredGateway.PricedModel] = 7.25m }, costs);
        Assert.Equal(MeteredGateway.CheapModel, comparison["cheapest"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("input_tokens=-5", "input_tokens")]
    [InlineData("input_tokens=10&cached_tokens=20", "cached_tokens")]
    [InlineData("models=not-a-model", "models")]
    public async Task PricingCompare_BadParameters_400(string query, string param)
    {
        using var response = await _alpha.GetAsync("/v1/pricing/compare?" + query, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(param, JsonNode.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))!["error"]!["param"]!.GetValue<string>());
    }

    [Fact]
    public async Task UsageEstimate_ProjectsTheObservedPaceToAMonth()
    {
        var from = DateTimeOffset.UtcNow.AddDays(-1).ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
        var to = DateTimeOffset.UtcNow.AddDays(1).ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);

        var estimate = await UsageAccountingTests.GetJsonAsync(_alpha, $"/v1/usage/estimate?from={from}&to={to}&models={MeteredGateway.CheapModel}");

        // Two days observed: the month ahead is 15 times that.
        Assert.Equal(2, estimate["basis_days"]!.GetValue<double>(), 3);
        var observedCost = _alphaRecords.Sum(r => r.CostUsd ?? 0);
        Assert.Equal(observedCost, estimate["observed"]!["cost_usd"]!.GetValue<decimal>());
        Assert.Equal(Math.Round(observedCost * 15, 6), estimate["monthly"]!["cost_usd"]!.GetValue<decimal>());
        Assert.Equal(60, estimate["monthly"]!["requests"]!.GetValue<long>());
        var alternative = estimate["alternatives"]!.AsArray().Single()!;
        var prompt = _alphaRecords.Sum(r => (long)r.PromptTokens) * 15;
        var completion = _alphaRecords.Sum(r => (long)r.CompletionTokens) * 15;
        Assert.Equal(Math.Round((prompt * MeteredGateway.CheapInput + completion * MeteredGateway.CheapOutput) / 1_000_000m, 6), alternative["cost_usd"]!.GetValue<decimal>());
        Assert.Equal(MeteredGateway.CheapModel, estimate["cheapest"]!.GetValue<string>());
    }

    [Fact]
    public async Task Metrics_CostByTenantModelProviderAndMissingPricesExposed()
    {
        await SendAsync(_alpha, "free", "no price for this one");
        await SendAsync(_alpha, "free", "nor this one");
        using var http = _metered.Gateway.CreateClient();

        var scrape = await http.GetStringAsync("/metrics", TestContext.Current.CancellationToken);
        var lines = scrape.Split('\n');

        var alphaCost = _alphaRecords.Where(r => r.RequestedModel == "chat").Sum(r => r.CostUsd ?? 0);
        var chatCost = lines.Single(l => l.StartsWith("llmproxy_cost_usd_total{", StringComparison.Ordinal)
            && l.Contains("tenant=\"alpha\"", StringComparison.Ordinal) && l.Contains("model=\"chat\"", StringComparison.Ordinal)
            && l.Contains("provider=\"openai\"", StringComparison.Ordinal));
        Assert.Equal((double)alphaCost, double.Parse(chatCost[(chatCost.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture), 12);
        Assert.Contains(lines, l => l.StartsWith("llmproxy_pricing_missing_total{model=\"sim-unpriced\"} 2", StringComparison.Ordinal));
        // A series without labels: "name value", or "name{} value" as OpenTelemetry's exporter writes it.
        Assert.Contains(lines, l => l.StartsWith("llmproxy_usage_ledger_queue_depth ", StringComparison.Ordinal) || l.StartsWith("llmproxy_usage_ledger_queue_depth{} ", StringComparison.Ordinal));
        Assert.Single(_metered.Gateway.Logs.Lines, l => l.Contains("no price for model sim-unpriced", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Readiness_IncludesTheUsageLedger()
    {
        using var http = _metered.Gateway.CreateClient();
        var ready = JsonNode.Parse(await http.GetStringAsync("/readyz", TestContext.Current.CancellationToken))!;

        Assert.Equal("healthy", ready["checks"]!["usage_ledger"]!["status"]!.GetValue<string>());
    }
}
