using System.Text;
using System.Text.Json.Nodes;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Metering;
using LlmProxy.Simulator;
using Microsoft.ML.Tokenizers;

namespace LlmProxy.IntegrationTests.Metering;

/// <summary>Streams are metered from the upstream's usage even when the client did not ask for it, and still metered when cut short.</summary>
[Collection(MeteringCollection.Name)]
public sealed class StreamUsageTests : IAsyncLifetime
{
    private const string Key = "sk-tenant-acme-streams-0123";
    private SimulatorServer _simulator = null!;
    private SimulatorServer _slow = null!;
    private MeteredGateway _metered = null!;
    private HttpClient _http = null!;

    public async ValueTask InitializeAsync()
    {
        _simulator = await SimulatorServer.StartAsync(new SimulatorOptions());
        _slow = await SimulatorServer.StartAsync(new SimulatorOptions { ChunkDelay = TimeSpan.FromMilliseconds(40) });
        _metered = await MeteredGateway.StartAsync(new GatewaySettings()
            .Tenant("acme", Key)
            .OpenAi("chat", "sim", _simulator.BaseAddress, configure: d => d.Set("UpstreamModel", MeteredGateway.PricedModel).Set("Breaker:ConsecutiveFailures", "1000"))
            .OpenAi("slow", "slow-sim", _slow.BaseAddress, configure: d => d.Set("UpstreamModel", MeteredGateway.PricedModel))
            .OpenAi("gpt", "gpt-sim", _simulator.BaseAddress, configure: d => d.Set("UpstreamModel", "gpt-4o-mini").Set("Breaker:ConsecutiveFailures", "1000")));
        _http = _metered.Gateway.CreateClient(Key);
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        await _metered.DisposeAsync();
        await _slow.DisposeAsync();
        await _simulator.DisposeAsync();
    }

    private static HttpRequestMessage Post(string id, string json)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        request.Headers.Add("x-request-id", id);
        return request;
    }

    private async Task<UsageRecord> RecordAsync(string id) =>
        (await _metered.WaitForRecordsAsync("acme", 1)).Single(r => r.RequestId == id);

    [Fact]
    public async Task Stream_ClientDidNotAskForUsage_RecordedFromTheUpstreamAndNotShown()
    {
        using var response = await _http.SendAsync(Post("s-nousage", """{"model":"chat","stream":true,"messages":[{"role":"user","content":"one two three"}]}"""),
            HttpCompletionOption.ResponseHeadersRead, TestContext.Current.CancellationToken);
        var events = await Sse.ReadDataAsync(response);

        Assert.Equal("[DONE]", events[^1]);
        Assert.DoesNotContain(events, e => e.Contains("usage", StringComparison.Ordinal));
        // The gateway asked the upstream for usage all the same.
        Assert.True(JsonNode.Parse(_simulator.Requests.Last!.Body)!["stream_options"]!["include_usage"]!.GetValue<bool>());

        var record = await RecordAsync("s-nousage");
        // The simulator charges words + 3 per message: 3 + 3 prompt; "Simulated reply to: one two three" is 6 words.
        Assert.Equal((6, 6, 12, false), (record.PromptTokens, record.CompletionTokens, record.TotalTokens, record.TokensEstimated));
        Assert.Equal((6 * MeteredGateway.PricedInput + 6 * MeteredGateway.PricedOutput) / 1_000_000m, record.CostUsd);
        Assert.True(record.Streamed);
        Assert.NotNull(record.TimeToFirstTokenMs);
        Assert.Equal(UsageOutcomes.Success, record.Outcome);
    }

    [Fact]
    public async Task Stream_ClientAskedForUsage_SeesTheSameNumbersAsTheRecord()
    {
        using var response = await _http.SendAsync(Post("s-usage", """{"model":"chat","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"one two three four"}]}"""),
            HttpCompletionOption.ResponseHeadersRead, TestContext.Current.CancellationToken);
        var events = await Sse.ReadDataAsync(response);
        var usage = JsonNode.Parse(events[^2])!["usage"]!;

        var record = await RecordAsync("s-usage");

        Assert.Equal(usage["prompt_tokens"]!.GetValue<int>(), record.PromptTokens);
        Assert.Equal(usage["completion_tokens"]!.GetValue<int>(), record.CompletionTokens);
        Assert.False(record.TokensEstimated);
    }

    [Fact]
    public async Task Stream_ClientDisconnectsMidStream_RecordedWithEstimatedTokens()
    {
        var words = string.Join(' ', Enumerable.Range(0, 200).Select(i => "word" + i));
        var json = $$"""{"model":"slow","stream":true,"messages":[{"role":"user","content":"{{words}}"}]}""";
        var response = await _http.SendAsync(Post("s-gone", json), HttpCompletionOption.ResponseHeadersRead, TestContext.Current.CancellationToken);
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync(TestContext.Current.CancellationToken));
        var contentChunks = 0;
        while (contentChunks < 5 && await reader.ReadLineAsync(TestContext.Current.CancellationToken) is { } line)
        {
            if (line.Contains("\"content\":\"", StringComparison.Ordinal))
            {
                contentChunks++;
            }
        }
        // The client goes away with the stream far from done (about 200 chunks at 40 ms).
        reader.Dispose();
        response.Dispose();

        var record = await RecordAsync("s-gone");

        Assert.True(record.ClientDisconnected);
        Assert.Equal(UsageOutcomes.ClientDisconnected, record.Outcome);
        Assert.True(record.TokensEstimated);
        Assert.True(record.Streamed);
        Assert.Equal("slow-sim", record.Deployment);
        // Prompt estimated from the request text (~1,300 characters); completion from the few chunks sent, far below the full reply.
        Assert.InRange(record.PromptTokens, 300, 400);
        Assert.InRange(record.CompletionTokens, 1, 150);
        Assert.True(record.CostUsd > 0);
    }

    [Fact]
    public async Task Stream_UpstreamAbortsMidStream_RecordedWithEstimatedTokensAndTheError()
    {
        _simulator.Faults.Set(SimulatorFault.MidStreamAbort(afterChunks: 3), count: 1);
        using var response = await _http.SendAsync(Post("s-abort", """{"model":"chat","stream":true,"messages":[{"role":"user","content":"alpha beta gamma delta epsilon"}]}"""),
            HttpCompletionOption.ResponseHeadersRead, TestContext.Current.CancellationToken);
        var events = await Sse.ReadDataAsync(response);
        Assert.Contains(events, e => e.Contains("\"error\"", StringComparison.Ordinal));

        var record = await RecordAsync("s-abort");

        Assert.True(record.TokensEstimated);
        Assert.True(record.CompletionTokens > 0);
        Assert.NotNull(record.ErrorType);
        Assert.Equal(UsageOutcomes.Error, record.Outcome);
        Assert.Equal(200, record.Status);
    }

    [Fact]
    public async Task Stream_OpenAiModelCutShort_RecordCountsWhatTheClientGotWithTheModelsTokenizer()
    {
        // English, code and CJK together: text on which four characters a token is off in both directions.
        const string prompt = "The gateway writes down what each call cost, even when the upstream forgets to say. "
            + "if (sum[i] > max) { max = sum[i]; at = i; } return (max, at); "
            + "網關仍然必須在帳本裡寫下一個數字，因為財務部門會在月底用它來核對發票。";
        _simulator.Faults.Set(SimulatorFault.MidStreamAbort(afterChunks: 30), count: 1);
        var json = new JsonObject
        {
            ["model"] = "gpt",
            ["stream"] = true,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = prompt }),
        }.ToJsonString();
        using var response = await _http.SendAsync(Post("s-gpt-cut", json), HttpCompletionOption.ResponseHeadersRead, TestContext.Current.CancellationToken);
        var events = await Sse.ReadDataAsync(response);
        Assert.Contains(events, e => e.Contains("\"error\"", StringComparison.Ordinal));
        var received = Sse.Content(events.Where(e => !e.Contains("\"error\"", StringComparison.Ordinal)));

        var record = await RecordAsync("s-gpt-cut");

        // An independent count with gpt-4o-mini's encoding, and OpenAI's chat framing for one user message.
        var o200k = TiktokenTokenizer.CreateForEncoding("o200k_base");
        var completion = o200k.CountTokens(received);
        var promptTokens = 3 + o200k.CountTokens("user") + o200k.CountTokens(prompt) + 3;
        Assert.True(record.TokensEstimated);
        Assert.True(completion > 20, $"too little got through to compare: '{received}'");
        Assert.InRange(record.CompletionTokens, completion * 0.95, completion * 1.05);
        Assert.InRange(record.PromptTokens, promptTokens * 0.95, promptTokens * 1.05);
        Assert.Equal(UsageOutcomes.Error, record.Outcome);
    }
}
