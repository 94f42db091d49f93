using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Metering;
using LlmProxy.OpenAi;
using LlmProxy.Simulator;

namespace LlmProxy.IntegrationTests.Metering;

/// <summary>
/// Exact accounting: 2,000 concurrent requests of every kind (non-streamed, streamed with and without usage, OpenAI and
/// Bedrock upstreams, failing upstream, failing mid-stream, unpriced, unknown model; cache hits and misses) make exactly 2,000 records, each with
/// the tokens and cost the client's response implies, in SQLite and in DynamoDB (dynalite); the usage API adds them up
/// to the same numbers.
/// </summary>
[Collection(MeteringCollection.Name)]
public sealed class UsageAccountingTests
{
    private const int Requests = 2000;
    private const int InFlight = 64;
    private const string Key = "sk-tenant-acme-accounting-01";
    private const string ReferenceKey = "sk-tenant-ref-accounting-01";
    private static readonly string BedrockKeyVariable = "LLMPROXY_TEST_ACCT_AWS_KEY_" + Guid.NewGuid().ToString("N");
    private static readonly string BedrockSecretVariable = "LLMPROXY_TEST_ACCT_AWS_SECRET_" + Guid.NewGuid().ToString("N");
    private static readonly string[] Prompts = ["Say hello", "Count to three please", "Name a colour", "What is two plus two"];

    /// <summary>Distinct prompts: each is a cache miss the first time and (the cache being on) a hit afterwards.</summary>
    private static string PromptOf(int i) => $"{Prompts[i % Prompts.Length]} number {i % 50}";

    private enum Kind { Plain, BedrockPlain, StreamWithUsage, BedrockStream, StreamWithoutUsage, UpstreamFails, FailsMidStream, Unpriced, UnknownModel }

    private sealed record Expected(string Model, Kind Kind, int Status, int Prompt, int Completion, bool Estimated, decimal? Cost, string? Agent, bool Streamed,
        bool CacheHit = false);

    private static Kind KindOf(int i) => (i % 20) switch
    {
        < 5 => Kind.Plain,
        5 => Kind.BedrockPlain,
        < 9 => Kind.StreamWithUsage,
        9 => Kind.BedrockStream,
        < 14 => Kind.StreamWithoutUsage,
        < 16 => Kind.UpstreamFails,
        < 18 => Kind.FailsMidStream,
        18 => Kind.Unpriced,
        _ => Kind.UnknownModel,
    };

    [Fact]
    public Task Sqlite_TwoThousandMixedRequests_ExactlyOneRightRecordEach() => RunAsync(dynamo: null);

    [Fact]
    public async Task DynamoDb_TwoThousandMixedRequests_ExactlyOneRightRecordEach()
    {
        await using var dynamo = await DynaliteServer.StartAsync();
        await RunAsync(dynamo);
    }

    private static async Task RunAsync(DynaliteServer? dynamo)
    {
        await using var healthy = await SimulatorServer.StartAsync(new SimulatorOptions());
        await using var broken = await SimulatorServer.StartAsync(new SimulatorOptions());
        await using var flaky = await SimulatorServer.StartAsync(new SimulatorOptions());
        broken.Faults.Set(SimulatorFault.Status(500));
        Environment.SetEnvironmentVariable(BedrockKeyVariable, SimulatorOptions.DefaultBedrockAccessKeyId);
        Environment.SetEnvironmentVariable(BedrockSecretVariable, SimulatorOptions.DefaultBedrockSecretAccessKey);
        flaky.Faults.Set(SimulatorFault.MidStreamError(afterChunks: 3));
        var settings = new GatewaySettings()
            .Tenant("acme", Key)
            .Tenant("ref", ReferenceKey)
            .OpenAi("chat", "healthy", healthy.BaseAddress, configure: d => d.Set("UpstreamModel", MeteredGateway.PricedModel))
            .OpenAi("broken", "broken-1", broken.BaseAddress, configure: d => d.Set("UpstreamModel", MeteredGateway.PricedModel).Set("Breaker:MinimumThroughput", "1000000").Set("Breaker:ConsecutiveFailures", "1000000"))
            .OpenAi("flaky", "flaky-1", flaky.BaseAddress, configure: d => d.Set("UpstreamModel", MeteredGateway.CheapModel).Set("Breaker:MinimumThroughput", "1000000").Set("Breaker:ConsecutiveFailures", "1000000"))
            .OpenAi("free", "free-1", healthy.BaseAddress, configure: d => d.Set("UpstreamModel", "sim-unpriced"))
            // The simulator answers Bedrock's Converse with the same words and token counts as its OpenAI API; the
            // upstream id is priced by the "same model id at any provider" rule.
            .Deployment("claude", "bedrock-1", "bedrock", healthy.BaseAddress.ToString(), upstreamModel: MeteredGateway.PricedModel,
                configure: d => d.Set("Region", "us-east-1").Set("Settings:AccessKeyIdEnv", BedrockKeyVariable).Set("Settings:SecretAccessKeyEnv", BedrockSecretVariable))
            .Set("LlmProxy:Cache:Enabled", "true");
        await using var metered = await MeteredGateway.StartAsync(settings, dynamo);
        using var http = metered.Gateway.CreateClient(Key);
        using var reference = metered.Gateway.CreateClient(ReferenceKey);

        // What the simulator charges for each prompt, from non-streamed answers (their usage is visible).
        var referenceUsage = new Dictionary<string, (int Prompt, int Completion)>();
        foreach (var prompt in Enumerable.Range(0, 200).Select(PromptOf).Distinct())
        {
            using var response = await reference.PostAsync("/v1/chat/completions", Json(new JsonObject { ["model"] = "chat", ["messages"] = Messages(prompt) }));
            var usage = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["usage"]!;
            referenceUsage[prompt] = (usage["prompt_tokens"]!.GetValue<int>(), usage["completion_tokens"]!.GetValue<int>());
        }

        var expected = new ConcurrentDictionary<string, Expected>();
        await Parallel.ForEachAsync(Enumerable.Range(0, Requests), new ParallelOptions { MaxDegreeOfParallelism = InFlight }, async (i, ct) =>
        {
            var id = $"acct-{i:D5}";
            expected[id] = await SendAsync(http, i, id, referenceUsage, ct);
        });

        var records = await metered.WaitForRecordsAsync("acme", Requests, TimeSpan.FromSeconds(60));

        Assert.Equal(Requests, records.Count);
        Assert.Equal(Requests, records.Select(r => r.RequestId).Distinct().Count());
        foreach (var record in records)
        {
            Assert.True(expected.TryGetValue(record.RequestId, out var e), $"unexpected record {record.RequestId}");
            var context = $"{record.RequestId} ({e.Kind})";
            Assert.True(e.Model == record.RequestedModel, context);
            Assert.True(e.Status == record.Status, $"{context}: status {record.Status}, client saw {e.Status}");
            Assert.True((e.Prompt, e.Completion, e.Prompt + e.Completion) == (record.PromptTokens, record.CompletionTokens, record.TotalTokens),
                $"{context}: tokens {record.PromptTokens}/{record.CompletionTokens}, expected {e.Prompt}/{e.Completion}");
            Assert.True(e.Estimated == record.TokensEstimated, context);
            Assert.True(e.Cost == record.CostUsd, $"{context}: cost {record.CostUsd}, expected {e.Cost}");
            Assert.True(e.Agent == record.Agent, context);
            Assert.True(e.Streamed == record.Streamed, context);
            Assert.Equal("acme-key", record.KeyId);
            Assert.True(e.CacheHit == record.CacheHit, $"{context}: cache hit {record.CacheHit}");
            var outcome = e.Kind switch
            {
                Kind.UpstreamFails or Kind.FailsMidStream or Kind.UnknownModel => UsageOutcomes.Error,
                _ => UsageOutcomes.Success,
            };
            Assert.True(outcome == record.Outcome, $"{context}: outcome {record.Outcome}");
            if (e.Kind is Kind.Plain or Kind.StreamWithUsage or Kind.StreamWithoutUsage && !e.CacheHit)
            {
                Assert.Equal(("openai", "healthy", MeteredGateway.PricedModel, 1), (record.Provider, record.Deployment, record.UpstreamModel, record.Attempts));
            }
            if (e.Kind is Kind.BedrockPlain or Kind.BedrockStream && !e.CacheHit)
            {
                Assert.Equal(("bedrock", "bedrock-1", MeteredGateway.PricedModel, 1), (record.Provider, record.Deployment, record.UpstreamModel, record.Attempts));
            }
        }

        // The usage API adds the same records up to the same numbers.
        var report = await GetJsonAsync(http, $"/v1/usage?{Around()}&group_by=model");
        var totals = report["totals"]!;
        Assert.Equal(Requests, totals["requests"]!.GetValue<long>());
        Assert.Equal(expected.Values.Sum(e => (long)e.Prompt), totals["prompt_tokens"]!.GetValue<long>());
        Assert.Equal(expected.Values.Sum(e => (long)e.Completion), totals["completion_tokens"]!.GetValue<long>());
        Assert.Equal(expected.Values.Sum(e => e.Cost ?? 0m), totals["cost_usd"]!.GetValue<decimal>());
        Assert.Equal(expected.Values.Count(e => e.Kind is Kind.UpstreamFails or Kind.FailsMidStream or Kind.UnknownModel), totals["failed"]!.GetValue<long>());
        Assert.Equal(expected.Values.Count(e => e.Kind == Kind.Unpriced && !e.CacheHit), totals["unpriced_requests"]!.GetValue<long>());
        var hits = expected.Values.Count(e => e.CacheHit);
        Assert.Equal(hits, totals["cache_hits"]!.GetValue<long>());
        Assert.InRange(hits, 500, Requests - 500); // both hits and misses in the mix
        Assert.Equal(expected.Values.Count(e => e.Estimated), totals["estimated_requests"]!.GetValue<long>());
        foreach (var group in report["data"]!.AsArray())
        {
            var model = group!["group"]!.GetValue<string>();
            var inGroup = expected.Values.Where(e => e.Model == model).ToArray();
            Assert.Equal(inGroup.Length, group["requests"]!.GetValue<long>());
            Assert.Equal(inGroup.Sum(e => e.Cost ?? 0m), group["cost_usd"]!.GetValue<decimal>());
        }
        Assert.Equal(expected.Values.Select(e => e.Model).Distinct().Count(), report["data"]!.AsArray().Count);
    }

    private static async Task<Expected> SendAsync(HttpClient http, int i, string id, Dictionary<string, (int Prompt, int Completion)> referenceUsage, CancellationToken ct)
    {
        var kind = KindOf(i);
        var prompt = PromptOf(i);
        var model = kind switch
        {
            Kind.UpstreamFails => "broken",
            Kind.FailsMidStream => "flaky",
            Kind.Unpriced => "free",
            Kind.UnknownModel => "no-such-model",
            Kind.BedrockPlain or Kind.BedrockStream => "claude",
            _ => "chat",
        };
        var stream = kind is Kind.StreamWithUsage or Kind.StreamWithoutUsage or Kind.FailsMidStream or Kind.BedrockStream;
        var body = new JsonObject { ["model"] = model, ["messages"] = Messages(prompt) };
        if (stream)
        {
            body["stream"] = true;
        }
        if (kind == Kind.StreamWithUsage)
        {
            body["stream_options"] = new JsonObject { ["include_usage"] = true };
        }
        string? agent = null;
        if (i % 2 == 0)
        {
            agent = $"app-{i % 3}";
        }
        else if (i % 5 == 1)
        {
            agent = $"user-{i % 7}";
            body["user"] = agent;
        }

        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = Json(body) };
        request.Headers.Add("x-request-id", id);
        if (i % 2 == 0)
        {
            request.Headers.Add(UsageRecordFactory.AgentHeader, agent);
        }
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        var status = (int)response.StatusCode;
        var hit = response.Headers.TryGetValues("x-llmproxy-cache", out var cache) && cache.Single() == "HIT";

        switch (kind)
        {
            case Kind.Plain or Kind.Unpriced or Kind.BedrockPlain:
            {
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                var usage = JsonNode.Parse(await response.Content.ReadAsStringAsync(ct))!["usage"]!;
                var (p, c) = (usage["prompt_tokens"]!.GetValue<int>(), usage["completion_tokens"]!.GetValue<int>());
                // A cache hit cost nothing upstream, whatever usage the cached answer shows.
                return hit
                    ? new Expected(model, kind, status, 0, 0, false, 0m, agent, false, CacheHit: true)
                    : new Expected(model, kind, status, p, c, false, kind == Kind.Unpriced ? null : PricedCost(p, c), agent, false);
            }
            case Kind.StreamWithUsage:
            {
                var events = await Sse.ReadDataAsync(response);
                var usage = JsonNode.Parse(events.Where(e => e != "[DONE]").Last())!["usage"]!;
                var (p, c) = (usage["prompt_tokens"]!.GetValue<int>(), usage["completion_tokens"]!.GetValue<int>());
                Assert.Equal(referenceUsage[prompt], (p, c));
                return hit
                    ? new Expected(model, kind, status, 0, 0, false, 0m, agent, true, CacheHit: true)
                    : new Expected(model, kind, status, p, c, false, PricedCost(p, c), agent, true);
            }
            case Kind.StreamWithoutUsage or Kind.BedrockStream:
            {
                var events = await Sse.ReadDataAsync(response);
                Assert.Equal("[DONE]", events[^1]);
                AssertNoUsageShown(events);
                var (p, c) = referenceUsage[prompt];
                return hit
                    ? new Expected(model, kind, status, 0, 0, false, 0m, agent, true, CacheHit: true)
                    : new Expected(model, kind, status, p, c, false, PricedCost(p, c), agent, true);
            }
            case Kind.FailsMidStream:
            {
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                var events = await Sse.ReadDataAsync(response);
                Assert.Contains(events, e => e.Contains("\"error\"", StringComparison.Ordinal));
                AssertNoUsageShown(events);
                // No usage from the upstream: prompt estimated from the request, completion from what the client was sent.
                Assert.True(ChatRequestParser.TryParse(Encoding.UTF8.GetBytes(body.ToJsonString()), out var parsed, out _));
                var p = UsageEstimator.EstimatePrompt(parsed!);
                var c = UsageEstimator.EstimateText(Sse.Content(events.Where(e => !e.Contains("\"error\"", StringComparison.Ordinal))));
                Assert.True(c > 0);
                return new Expected(model, kind, status, p, c, true,
                    (p * MeteredGateway.CheapInput + c * MeteredGateway.CheapOutput) / 1_000_000m, agent, true);
            }
            default:
                await response.Content.ReadAsByteArrayAsync(ct);
                Assert.True(status >= 400, $"{kind}: {status}");
                return new Expected(model, kind, status, 0, 0, false, 0m, agent, false);
        }
    }

    /// <summary>The gateway asked the upstream for usage on the client's behalf: a client that did not ask must not see it.</summary>
    private static void AssertNoUsageShown(List<string> events)
    {
        foreach (var data in events.Where(e => e != "[DONE]"))
        {
            var chunk = JsonNode.Parse(data)!.AsObject();
            Assert.False(chunk.ContainsKey("usage"), "usage shown to a client that did not ask: " + data);
            Assert.False(chunk["choices"] is JsonArray { Count: 0 }, "usage-only chunk shown: " + data);
        }
    }

    private static decimal PricedCost(int prompt, int completion) =>
        (prompt * MeteredGateway.PricedInput + completion * MeteredGateway.PricedOutput) / 1_000_000m;

    private static JsonArray Messages(string prompt) => [new JsonObject { ["role"] = "user", ["content"] = prompt }];

    private static StringContent Json(JsonNode body) => new(body.ToJsonString(), Encoding.UTF8, "application/json");

    /// <summary>A query range around now: a day either side.</summary>
    internal static string Around() =>
        $"from={DateTimeOffset.UtcNow.AddDays(-1):yyyy-MM-dd}&to={DateTimeOffset.UtcNow.AddDays(2):yyyy-MM-dd}";

    internal static async Task<JsonNode> GetJsonAsync(HttpClient http, string path)
    {
        using var response = await http.GetAsync(path);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{path}: {(int)response.StatusCode} {text}");
        return JsonNode.Parse(text)!;
    }
}
