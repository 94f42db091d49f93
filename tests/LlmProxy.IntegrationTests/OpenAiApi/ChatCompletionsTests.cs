using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Simulator;
using OpenAI.Chat;

namespace LlmProxy.IntegrationTests.OpenAiApi;

/// <summary>The official OpenAI .NET SDK against the real gateway forwarding to a simulated OpenAI upstream.</summary>
public sealed class ChatCompletionsTests : IAsyncLifetime
{
    private const string TenantKey = "sk-tenant-acme-0123456789";
    private const string UpstreamKey = "sk-upstream-secret-9876543210";
    private readonly string _upstreamKeyVariable = "LLMPROXY_TEST_UPSTREAM_KEY_" + Guid.NewGuid().ToString("N");
    private SimulatorServer _simulator = null!;
    private GatewayHost _gateway = null!;

    public async ValueTask InitializeAsync()
    {
        Environment.SetEnvironmentVariable(_upstreamKeyVariable, UpstreamKey);
        _simulator = await SimulatorServer.StartAsync(new SimulatorOptions { ExpectedApiKey = UpstreamKey });
        _gateway = await GatewayHost.StartAsync(new GatewaySettings()
            .Tenant("acme", TenantKey)
            .OpenAi("gpt-test", "sim-openai", _simulator.BaseAddress, apiKeyEnv: _upstreamKeyVariable,
                configure: d => d.Set("UpstreamModel", "upstream-model-id")));
    }

    public async ValueTask DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _simulator.DisposeAsync();
        Environment.SetEnvironmentVariable(_upstreamKeyVariable, null);
    }

    [Fact]
    public async Task NonStreaming_OfficialSdk_GetsUpstreamAnswerUnderClientModelName()
    {
        var client = _gateway.CreateChatClient("gpt-test", TenantKey);

        ClientResult<ChatCompletion> result = await client.CompleteChatAsync([new UserChatMessage("Hello there")]);

        var completion = result.Value;
        Assert.Equal("Simulated reply to: Hello there", completion.Content[0].Text);
        Assert.Equal("gpt-test", completion.Model);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal(5, completion.Usage.InputTokenCount);
        Assert.Equal(5, completion.Usage.OutputTokenCount);
        var raw = result.GetRawResponse();
        Assert.Equal("sim-openai", raw.Headers.TryGetValue("x-llmproxy-deployment", out var d) ? d : null);
        Assert.Equal("1", raw.Headers.TryGetValue("x-llmproxy-attempts", out var a) ? a : null);
        Assert.True(raw.Headers.TryGetValue("x-request-id", out var id) && id!.Length > 0);

        var upstreamBody = JsonDocument.Parse(_simulator.Requests.Last!.Body).RootElement;
        Assert.Equal("upstream-model-id", upstreamBody.GetProperty("model").GetString());
    }

    [Fact]
    public async Task Streaming_OfficialSdk_ReassemblesTheNonStreamedAnswer()
    {
        var client = _gateway.CreateChatClient("gpt-test", TenantKey);
        var messages = new ChatMessage[] { new UserChatMessage("Tell me a short story") };
        var whole = (await client.CompleteChatAsync(messages)).Value;

        var content = new StringBuilder();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        var updates = 0;
        await foreach (var update in client.CompleteChatStreamingAsync(messages))
        {
            updates++;
            foreach (var part in update.ContentUpdate)
            {
                content.Append(part.Text);
            }
            finish ??= update.FinishReason;
            usage ??= update.Usage;
            Assert.Equal("gpt-test", update.Model);
        }

        Assert.True(updates > 3, "the answer should arrive in several chunks");
        Assert.Equal(whole.Content[0].Text, content.ToString());
        Assert.Equal(ChatFinishReason.Stop, finish);
        Assert.Equal(whole.Usage.TotalTokenCount, usage!.TotalTokenCount);
    }

    [Fact]
    public async Task Streaming_EventsReachTheClientAsTheyAreProduced()
    {
        await using var slow = await SimulatorServer.StartAsync(new SimulatorOptions { ChunkDelay = TimeSpan.FromMilliseconds(150) });
        await using var gateway = await GatewayHost.StartAsync(new GatewaySettings().Tenant("acme", TenantKey).OpenAi("gpt-test", "slow", slow.BaseAddress));
        using var http = gateway.CreateClient(TenantKey);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent("""{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"one two three four five six"}]}""", Encoding.UTF8, "application/json"),
        };

        var started = System.Diagnostics.Stopwatch.StartNew();
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        TimeSpan? firstContent = null;
        string? line;
        while ((line = await reader.ReadLineAsync()) is not null)
        {
            if (firstContent is null && line.Contains("\"content\":\"", StringComparison.Ordinal) && !line.Contains("\"content\":\"\"", StringComparison.Ordinal))
            {
                firstContent = started.Elapsed;
            }
        }
        var total = started.Elapsed;

        // About 12 events 150 ms apart: a buffering gateway would deliver the first one only at the end.
        Assert.NotNull(firstContent);
        Assert.True(total - firstContent.Value > TimeSpan.FromMilliseconds(900), $"first content at {firstContent}, stream ended at {total}");
    }

    [Fact]
    public async Task ToolCalls_PassThroughBothWays()
    {
        var client = _gateway.CreateChatClient("gpt-test", TenantKey);
        var tool = ChatTool.CreateFunctionTool("get_weather", "Weather for a city",
            BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"}},"required":["city"]}"""));
        var options = new ChatCompletionOptions { Tools = { tool } };
        var messages = new List<ChatMessage> { new UserChatMessage("Weather in Paris?") };

        var first = (await client.CompleteChatAsync(messages, options)).Value;
        Assert.Equal(ChatFinishReason.ToolCalls, first.FinishReason);
        var call = Assert.Single(first.ToolCalls);
        Assert.Equal("get_weather", call.FunctionName);
        Assert.Equal("sample", JsonDocument.Parse(call.FunctionArguments.ToString()).RootElement.GetProperty("city").GetString());

        // Streamed tool call arguments arrive in fragments and reassemble to the same JSON.
        var fragments = new Dictionary<int, StringBuilder>();
        await foreach (var update in client.CompleteChatStreamingAsync(messages, options))
        {
            foreach (var part in update.ToolCallUpdates)
            {
                (fragments.TryGetValue(part.Index, out var sb) ? sb : fragments[part.Index] = new StringBuilder()).Append(part.FunctionArgumentsUpdate?.ToString());
            }
        }
        Assert.Equal(call.FunctionArguments.ToString(), fragments[0].ToString());

        messages.Add(new AssistantChatMessage(first.ToolCalls));
        messages.Add(new ToolChatMessage(call.Id, "sunny, 21 C"));
        var second = (await client.CompleteChatAsync(messages, options)).Value;
        Assert.Equal("Simulated reply using tool results: sunny, 21 C", second.Content[0].Text);
    }

    [Fact]
    public async Task Keys_GatewayKeyNeverReachesUpstream_UpstreamKeyNeverReachesClient()
    {
        var client = _gateway.CreateChatClient("gpt-test", TenantKey);
        var result = await client.CompleteChatAsync([new UserChatMessage("secret check")]);
        await foreach (var _ in client.CompleteChatStreamingAsync([new UserChatMessage("secret check")]))
        {
        }

        Assert.Equal(2, _simulator.Requests.Count);
        foreach (var upstream in _simulator.Requests.Recent)
        {
            Assert.Equal("Bearer " + UpstreamKey, upstream.Header("Authorization"));
            Assert.DoesNotContain(upstream.Headers, h => h.Value.Contains(TenantKey, StringComparison.Ordinal));
            Assert.DoesNotContain(TenantKey, upstream.Body);
        }

        var raw = result.GetRawResponse();
        Assert.DoesNotContain(UpstreamKey, raw.Content.ToString());
        Assert.DoesNotContain(raw.Headers, h => h.Value.Contains(UpstreamKey, StringComparison.Ordinal));
        Assert.DoesNotContain(_gateway.Logs.Lines, l => l.Contains(UpstreamKey, StringComparison.Ordinal) || l.Contains(TenantKey, StringComparison.Ordinal));
    }

    [Fact]
    public async Task StreamUsage_HiddenUnlessTheClientAskedForIt()
    {
        using var http = _gateway.CreateClient(TenantKey);

        var without = await PostStreamAsync(http, """{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}""");
        var with = await PostStreamAsync(http, """{"model":"gpt-test","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}""");

        Assert.Equal("[DONE]", without[^1]);
        Assert.DoesNotContain(without, e => e.Contains("\"usage\"", StringComparison.Ordinal));
        Assert.Equal("[DONE]", with[^1]);
        var usageChunk = JsonDocument.Parse(with[^2]).RootElement;
        Assert.Equal(0, usageChunk.GetProperty("choices").GetArrayLength());
        Assert.Equal(4, usageChunk.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
        // The gateway asked the upstream for usage in both cases, so it can always meter streams.
        Assert.All(_simulator.Requests.Recent, r => Assert.Contains("\"include_usage\":true", r.Body));
    }

    [Fact]
    public async Task RequestId_AcceptedFromClientOrGenerated_AndLogged()
    {
        using var http = _gateway.CreateClient(TenantKey);
        using var mine = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent("""{"model":"gpt-test","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"),
        };
        mine.Headers.Add("x-request-id", "client-chosen-id-42");

        using var echoed = await http.SendAsync(mine);
        using var generated = await http.GetAsync("/v1/models");
        using var error = await http.GetAsync("/v1/nowhere");

        Assert.Equal("client-chosen-id-42", echoed.Headers.GetValues("x-request-id").Single());
        Assert.StartsWith("req_", generated.Headers.GetValues("x-request-id").Single());
        Assert.StartsWith("req_", error.Headers.GetValues("x-request-id").Single());
        Assert.Contains(_gateway.Logs.Lines, l => l.Contains("client-chosen-id-42", StringComparison.Ordinal));
    }

    private static async Task<List<string>> PostStreamAsync(HttpClient http, string json)
    {
        using var response = await http.PostAsync("/v1/chat/completions", new StringContent(json, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/event-stream", response.Content.Headers.ContentType!.ToString());
        return await Sse.ReadDataAsync(response);
    }
}
