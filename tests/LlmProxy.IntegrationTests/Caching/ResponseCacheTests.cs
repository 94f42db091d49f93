using System.ClientModel;
using System.Text;
using System.Text.Json.Nodes;
using LlmProxy.Caching;
using LlmProxy.Simulator;
using OpenAI.Chat;

namespace LlmProxy.IntegrationTests.Caching;

/// <summary>The response cache with its default memory store, through the real gateway and a simulated upstream.</summary>
public sealed class ResponseCacheTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Request_SameTenantTwice_SecondIsHitWithSameAnswerAndNoUpstreamCall()
    {
        await using var env = await CacheTestGateway.StartAsync();

        var miss = await env.SendAsync("acme", CacheTestGateway.Body());
        var hit = await env.SendAsync("acme", CacheTestGateway.Body());

        Assert.Equal(200, miss.Status);
        Assert.Equal("MISS", miss.Cache);
        Assert.Null(miss.Age);
        Assert.Equal("HIT", hit.Cache);
        Assert.Equal(TimeSpan.Zero, hit.Age);
        Assert.Equal(miss.Body, hit.Body);
        Assert.Equal(1, env.UpstreamCalls);
    }

    [Fact]
    public async Task Request_SameBodyFromTwoTenants_EachTenantGetsOnlyItsOwnAnswer()
    {
        await using var env = await CacheTestGateway.StartAsync();

        var a = await env.SendAsync("acme", CacheTestGateway.Body());
        var b = await env.SendAsync("globex", CacheTestGateway.Body());
        var a2 = await env.SendAsync("acme", CacheTestGateway.Body());
        var b2 = await env.SendAsync("globex", CacheTestGateway.Body(stream: true));

        Assert.Equal("MISS", b.Cache);
        Assert.Equal(2, env.UpstreamCalls);
        Assert.NotEqual(a.Id, b.Id);
        Assert.Equal("HIT", a2.Cache);
        Assert.Equal(a.Id, a2.Id);
        Assert.Equal("HIT", b2.Cache);
        Assert.Equal(b.Id, b2.Id);
    }

    [Fact]
    public async Task Request_ClientCannotChooseTheTenantPartition_ByBodyOrHeaders()
    {
        await using var env = await CacheTestGateway.StartAsync();
        var a = await env.SendAsync("acme", CacheTestGateway.Body());

        var body = CacheTestGateway.Body();
        body["user"] = "acme";
        var b = await env.SendAsync("globex", body, ("x-llmproxy-tenant", "acme"), ("Cache-Control", "only-if-cached"));
        var b2 = await env.SendAsync("globex", CacheTestGateway.Body(), ("x-llmproxy-tenant", "acme"));

        Assert.NotEqual(a.Id, b.Id);
        Assert.NotEqual(a.Id, b2.Id);
        Assert.Equal(3, env.UpstreamCalls);
    }

    [Fact]
    public async Task Request_ReorderedKeysAndWhitespace_Hit()
    {
        await using var env = await CacheTestGateway.StartAsync();
        var first = await env.SendAsync("acme", """{"model":"gpt-test","temperature":0.5,"messages":[{"role":"user","content":"Hi"}]}""");

        var reordered = await env.SendAsync("acme", """
            {
              "messages": [ { "content": "Hi", "role": "user" } ],
              "temperature": 0.50,
              "model": "gpt-test"
            }
            """);

        Assert.Equal("HIT", reordered.Cache);
        Assert.Equal(first.Id, reordered.Id);
        Assert.Equal(1, env.UpstreamCalls);
    }

    [Theory]
    [InlineData("""{"model":"gpt-test","temperature":0.6,"messages":[{"role":"user","content":"Hi"}]}""")]
    [InlineData("""{"model":"gpt-test","temperature":0.5,"messages":[{"role":"user","content":"Hi!"}]}""")]
    [InlineData("""{"model":"gpt-test","temperature":0.5,"messages":[{"role":"system","content":"Be brief"},{"role":"user","content":"Hi"}]}""")]
    [InlineData("""{"model":"gpt-test","temperature":0.5,"max_tokens":3,"messages":[{"role":"user","content":"Hi"}]}""")]
    [InlineData("""{"model":"gpt-test","temperature":0.5,"seed":7,"messages":[{"role":"user","content":"Hi"}]}""")]
    [InlineData("""{"model":"gpt-test","temperature":0.5,"stop":["x"],"messages":[{"role":"user","content":"Hi"}]}""")]
    public async Task Request_ChangedMessagesOrParameters_Miss(string changed)
    {
        await using var env = await CacheTestGateway.StartAsync();
        await env.SendAsync("acme", """{"model":"gpt-test","temperature":0.5,"messages":[{"role":"user","content":"Hi"}]}""");

        var other = await env.SendAsync("acme", changed);

        Assert.Equal("MISS", other.Cache);
        Assert.Equal(2, env.UpstreamCalls);
    }

    [Fact]
    public async Task StreamMiss_ThenNonStreamHit_SdkSeesIdenticalAnswer()
    {
        await using var env = await CacheTestGateway.StartAsync();
        var client = env.Gateway.CreateChatClient(CacheTestGateway.Model, CacheTestGateway.KeyOf("acme"));
        ChatMessage[] messages = [new UserChatMessage("Use the tools in parallel please")];
        var options = ToolOptions();

        var streamed = await CollectStreamAsync(client.CompleteChatStreamingAsync(messages, options, Ct));
        var result = await client.CompleteChatAsync(messages, options, Ct);

        Assert.Equal(1, env.UpstreamCalls);
        Assert.Equal("HIT", Header(result.GetRawResponse(), ResponseCacheHeaders.Result));
        var completion = result.Value;
        Assert.Equal(streamed.FinishReason, completion.FinishReason);
        Assert.Equal(ChatFinishReason.ToolCalls, completion.FinishReason);
        Assert.Equal(streamed.ToolCalls, completion.ToolCalls.Select(c => (c.Id, c.FunctionName, c.FunctionArguments.ToString())).ToList());
        Assert.Equal(2, completion.ToolCalls.Count);
        Assert.Equal(streamed.Usage, (completion.Usage.InputTokenCount, completion.Usage.OutputTokenCount, completion.Usage.TotalTokenCount));
        Assert.Equal(streamed.Id, completion.Id);
    }

    [Fact]
    public async Task NonStreamMiss_ThenStreamHit_SdkSeesIdenticalAnswer()
    {
        await using var env = await CacheTestGateway.StartAsync();
        var client = env.Gateway.CreateChatClient(CacheTestGateway.Model, CacheTestGateway.KeyOf("acme"));
        ChatMessage[] text = [new UserChatMessage("Tell me a short story about caches")];
        ChatMessage[] tools = [new UserChatMessage("Use the tools in parallel please")];

        var textCompletion = (await client.CompleteChatAsync(text, cancellationToken: Ct)).Value;
        var toolCompletion = (await client.CompleteChatAsync(tools, ToolOptions(), Ct)).Value;
        var textStream = await CollectStreamAsync(client.CompleteChatStreamingAsync(text, cancellationToken: Ct));
        var toolStream = await CollectStreamAsync(client.CompleteChatStreamingAsync(tools, ToolOptions(), Ct));

        Assert.Equal(2, env.UpstreamCalls);
        Assert.Equal(textCompletion.Content[0].Text, textStream.Content);
        Assert.StartsWith("Simulated reply to: Tell me", textStream.Content);
        Assert.Equal(ChatFinishReason.Stop, textStream.FinishReason);
        Assert.Equal((textCompletion.Usage.InputTokenCount, textCompletion.Usage.OutputTokenCount, textCompletion.Usage.TotalTokenCount), textStream.Usage);
        Assert.Equal(textCompletion.Id, textStream.Id);

        Assert.Equal(ChatFinishReason.ToolCalls, toolStream.FinishReason);
        Assert.Equal(toolCompletion.ToolCalls.Select(c => (c.Id, c.FunctionName, c.FunctionArguments.ToString())).ToList(), toolStream.ToolCalls);
        Assert.Equal((toolCompletion.Usage.InputTokenCount, toolCompletion.Usage.OutputTokenCount, toolCompletion.Usage.TotalTokenCount), toolStream.Usage);
    }

    [Fact]
    public async Task StreamHit_WithoutIncludeUsage_SseHasNoUsageChunkAndEndsWithDone()
    {
        await using var env = await CacheTestGateway.StartAsync();
        var miss = await env.SendAsync("acme", CacheTestGateway.Body(stream: true));

        var hit = await env.SendAsync("acme", CacheTestGateway.Body(stream: true));
        var hitWithUsage = await env.SendAsync("acme", CacheTestGateway.Body(stream: true, includeUsage: true));

        Assert.Equal("MISS", miss.Cache);
        Assert.Equal("HIT", hit.Cache);
        Assert.Equal(miss.Content, hit.Content);
        Assert.Equal("[DONE]", hit.Events[^1]);
        Assert.DoesNotContain("usage", hit.Body);
        Assert.Equal("[DONE]", hitWithUsage.Events[^1]);
        var usageChunk = JsonNode.Parse(hitWithUsage.Events[^2])!;
        Assert.Empty(usageChunk["choices"]!.AsArray());
        Assert.Equal(10, usageChunk["usage"]!["total_tokens"]!.GetValue<int>());
        Assert.All(hitWithUsage.Events.SkipLast(1), e => Assert.Equal("chat.completion.chunk", JsonNode.Parse(e)!["object"]!.GetValue<string>()));
        Assert.Equal(1, env.UpstreamCalls);
    }

    [Fact]
    public async Task Hit_CompletionListenersSeeCacheHitWithNoUpstreamUsage()
    {
        await using var env = await CacheTestGateway.StartAsync();

        // Listeners run once a response is complete, which may be after the client has sent its next request: wait for
        // each, so that the completions are in request order.
        await env.SendAsync("acme", CacheTestGateway.Body());
        await WaitUntilAsync(() => env.Completions.All.Count == 1);
        var hit = await env.SendAsync("acme", CacheTestGateway.Body());
        await WaitUntilAsync(() => env.Completions.All.Count == 2);
        await env.SendAsync("acme", CacheTestGateway.Body(stream: true));
        await WaitUntilAsync(() => env.Completions.All.Count == 3);

        var completions = env.Completions.All.ToArray();
        Assert.False(completions[0].Chat!.CacheHit);
        Assert.Equal(10, completions[0].Chat!.Usage!.TotalTokens);
        Assert.All(completions[1..], c =>
        {
            Assert.True(c.Chat!.CacheHit);
            Assert.Null(c.Chat.Usage);
            Assert.Null(c.Chat.ServedBy);
            Assert.Equal(200, c.StatusCode);
        });
        // The client still sees the usage of the original answer.
        Assert.Equal(10, hit.Json["usage"]!["total_tokens"]!.GetValue<int>());
    }

    [Fact]
    public async Task NoCache_SkipsLookupAndRefreshesTheEntry()
    {
        await using var env = await CacheTestGateway.StartAsync();
        var first = await env.SendAsync("acme", CacheTestGateway.Body());

        var refreshed = await env.SendAsync("acme", CacheTestGateway.Body(), ("Cache-Control", "no-cache"));
        var after = await env.SendAsync("acme", CacheTestGateway.Body());

        Assert.Equal("BYPASS", refreshed.Cache);
        Assert.NotEqual(first.Id, refreshed.Id);
        Assert.Equal("HIT", after.Cache);
        Assert.Equal(refreshed.Id, after.Id);
        Assert.Equal(2, env.UpstreamCalls);
    }

    [Fact]
    public async Task NoStore_AnswerNotKept()
    {
        await using var env = await CacheTestGateway.StartAsync();

        var first = await env.SendAsync("acme", CacheTestGateway.Body(), ("Cache-Control", "no-store"));
        var second = await env.SendAsync("acme", CacheTestGateway.Body());
        var bypassBoth = await env.SendAsync("acme", CacheTestGateway.Body(), ("Cache-Control", "no-cache, no-store"));
        var third = await env.SendAsync("acme", CacheTestGateway.Body());

        Assert.Equal("MISS", first.Cache);
        Assert.Equal("MISS", second.Cache);
        Assert.Equal("BYPASS", bypassBoth.Cache);
        Assert.Equal("HIT", third.Cache);
        Assert.Equal(second.Id, third.Id);
        Assert.Equal(3, env.UpstreamCalls);
    }

    [Fact]
    public async Task Ttl_PassesOnTheInjectedClock_EntryExpires()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var env = await CacheTestGateway.StartAsync(s => s.Set("LlmProxy:Cache:Ttl", "00:10:00"),
            services => services.AddSingleton<TimeProvider>(time));
        await env.SendAsync("acme", CacheTestGateway.Body());

        time.Advance(TimeSpan.FromMinutes(9));
        var fresh = await env.SendAsync("acme", CacheTestGateway.Body());
        time.Advance(TimeSpan.FromMinutes(1));
        var expired = await env.SendAsync("acme", CacheTestGateway.Body());

        Assert.Equal("HIT", fresh.Cache);
        Assert.Equal(TimeSpan.FromMinutes(9), fresh.Age);
        Assert.Equal("MISS", expired.Cache);
        Assert.Equal(2, env.UpstreamCalls);
    }

    [Fact]
    public async Task TtlHeader_ShortensButCannotExtendThePolicyTtl()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var env = await CacheTestGateway.StartAsync(s => s.Set("LlmProxy:Cache:Ttl", "00:10:00"),
            services => services.AddSingleton<TimeProvider>(time));
        await env.SendAsync("acme", CacheTestGateway.Body("short"), (ResponseCacheHeaders.Ttl, "30"));
        await env.SendAsync("acme", CacheTestGateway.Body("long"), (ResponseCacheHeaders.Ttl, "86400"));

        time.Advance(TimeSpan.FromSeconds(31));
        var shortAfter31s = await env.SendAsync("acme", CacheTestGateway.Body("short"));
        var longAfter31s = await env.SendAsync("acme", CacheTestGateway.Body("long"));
        time.Advance(TimeSpan.FromMinutes(10));
        var longAfter10m = await env.SendAsync("acme", CacheTestGateway.Body("long"));

        Assert.Equal("MISS", shortAfter31s.Cache);
        Assert.Equal("HIT", longAfter31s.Cache);
        Assert.Equal("MISS", longAfter10m.Cache);
    }

    [Fact]
    public async Task ClientControls_DisallowedForTenant_Ignored()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var env = await CacheTestGateway.StartAsync(s => s.Set("LlmProxy:Cache:Tenants:acme:AllowClientControls", "false"),
            services => services.AddSingleton<TimeProvider>(time));
        var first = await env.SendAsync("acme", CacheTestGateway.Body(), (ResponseCacheHeaders.Ttl, "1"));

        var noCache = await env.SendAsync("acme", CacheTestGateway.Body(), ("Cache-Control", "no-cache"));
        time.Advance(TimeSpan.FromSeconds(5));
        var afterHeaderTtl = await env.SendAsync("acme", CacheTestGateway.Body());
        await env.SendAsync("acme", CacheTestGateway.Body("other"), ("Cache-Control", "no-store"));
        var otherAgain = await env.SendAsync("acme", CacheTestGateway.Body("other"));
        var globexBypass = await env.SendAsync("globex", CacheTestGateway.Body(), ("Cache-Control", "no-cache"));

        Assert.Equal("HIT", noCache.Cache);
        Assert.Equal(first.Id, noCache.Id);
        Assert.Equal("HIT", afterHeaderTtl.Cache);
        Assert.Equal("HIT", otherAgain.Cache);
        Assert.Equal("BYPASS", globexBypass.Cache);
    }

    [Fact]
    public async Task PerModelAndTenantPolicy_DisabledPairs_NotCachedAndNoHeader()
    {
        await using var env = await CacheTestGateway.StartAsync(s => s
            .Set("LlmProxy:Cache:Enabled", "false")
            .Set("LlmProxy:Cache:Models:gpt-test:Enabled", "true")
            .Set("LlmProxy:Cache:Tenants:globex:Enabled", "false"));

        await env.SendAsync("globex", CacheTestGateway.Body());
        var globex = await env.SendAsync("globex", CacheTestGateway.Body());
        await env.SendAsync("acme", CacheTestGateway.Body());
        var acme = await env.SendAsync("acme", CacheTestGateway.Body());

        Assert.Null(globex.Cache);
        Assert.Equal("HIT", acme.Cache);
        Assert.Equal(3, env.UpstreamCalls);
    }

    [Fact]
    public async Task UpstreamErrorOrBrokenStream_NotCached()
    {
        await using var env = await CacheTestGateway.StartAsync();

        env.Simulator.Faults.Set(SimulatorFault.Status(400), count: 1);
        var error = await env.SendAsync("acme", CacheTestGateway.Body());
        var afterError = await env.SendAsync("acme", CacheTestGateway.Body());
        env.Simulator.Faults.Set(SimulatorFault.MidStreamError(afterChunks: 2), count: 1);
        var broken = await env.SendAsync("acme", CacheTestGateway.Body("stream", stream: true));
        var afterBroken = await env.SendAsync("acme", CacheTestGateway.Body("stream", stream: true));
        var hit = await env.SendAsync("acme", CacheTestGateway.Body("stream"));

        Assert.Equal(400, error.Status);
        Assert.Equal("MISS", afterError.Cache);
        Assert.Equal(200, afterError.Status);
        Assert.Contains("error", broken.Body);
        Assert.Equal("MISS", afterBroken.Cache);
        Assert.Equal("HIT", hit.Cache);
        Assert.Equal(afterBroken.Content, hit.Content);
    }

    [Fact]
    public async Task ResponseOverMaxEntryBytes_NotCached()
    {
        await using var env = await CacheTestGateway.StartAsync(s => s.Set("LlmProxy:Cache:Models:gpt-test:MaxEntryBytes", "200"));

        await env.SendAsync("acme", CacheTestGateway.Body(string.Join(' ', Enumerable.Repeat("word", 100))));
        var second = await env.SendAsync("acme", CacheTestGateway.Body(string.Join(' ', Enumerable.Repeat("word", 100))));
        await env.SendAsync("acme", CacheTestGateway.Body("Hi"));
        var small = await env.SendAsync("acme", CacheTestGateway.Body("Hi"));

        Assert.Equal("MISS", second.Cache);
        Assert.Equal("MISS", small.Cache); // even the short answer's JSON is over 200 bytes
        Assert.Equal(4, env.UpstreamCalls);
    }

    [Fact]
    public async Task ResponseOverTenantMaxEntryBytes_NotCachedForThatTenantOnly()
    {
        // The model allows large entries; acme's own limit is smaller, and the smaller one applies.
        await using var env = await CacheTestGateway.StartAsync(s => s
            .Set("LlmProxy:Cache:Models:gpt-test:MaxEntryBytes", "100000")
            .Set("LlmProxy:Cache:Tenants:acme:MaxEntryBytes", "600"));
        var longPrompt = string.Join(' ', Enumerable.Repeat("word", 100));

        var acmeLong = new List<Reply>();
        for (var i = 0; i < 3; i++)
        {
            acmeLong.Add(await env.SendAsync("acme", CacheTestGateway.Body(longPrompt)));
        }
        var globexLong = await env.SendAsync("globex", CacheTestGateway.Body(longPrompt));
        var globexLongAgain = await env.SendAsync("globex", CacheTestGateway.Body(longPrompt));
        var acmeShort = await env.SendAsync("acme", CacheTestGateway.Body("Hi"));
        var acmeShortAgain = await env.SendAsync("acme", CacheTestGateway.Body("Hi"));

        Assert.All(acmeLong, r => Assert.Equal(200, r.Status));
        Assert.True(Encoding.UTF8.GetByteCount(acmeLong[0].Body) > 600, "the long answer must exceed acme's limit");
        Assert.True(Encoding.UTF8.GetByteCount(acmeShort.Body) < 600, "the short answer must fit acme's limit");
        Assert.All(acmeLong, r => Assert.Equal("MISS", r.Cache));
        Assert.Equal("MISS", globexLong.Cache);
        Assert.Equal("HIT", globexLongAgain.Cache);
        Assert.Equal("MISS", acmeShort.Cache);
        Assert.Equal("HIT", acmeShortAgain.Cache);
        Assert.Equal(5, env.UpstreamCalls);
    }

    [Fact]
    public async Task FiftyConcurrentIdenticalRequests_OneUpstreamCall()
    {
        await using var env = await CacheTestGateway.StartAsync(simulatorOptions: new SimulatorOptions { Latency = TimeSpan.FromMilliseconds(500) });

        var replies = await Task.WhenAll(Enumerable.Range(0, 50).Select(i =>
            env.SendAsync("acme", CacheTestGateway.Body("Everyone at once", stream: i % 5 == 0))));

        Assert.Equal(1, env.UpstreamCalls);
        Assert.All(replies, r => Assert.Equal(200, r.Status));
        Assert.Single(replies, r => r.Cache == "MISS");
        Assert.Equal(49, replies.Count(r => r.Cache == "HIT"));
        Assert.Single(replies.Select(r => r.Content).Distinct());
        Assert.Single(replies.Select(r => r.Id).Distinct());
    }

    [Fact]
    public async Task ReadinessWithMemoryStore_Healthy()
    {
        await using var env = await CacheTestGateway.StartAsync();
        using var client = env.Gateway.CreateClient();

        var ready = await client.GetStringAsync("readyz", Ct);

        Assert.Contains("\"response-cache\":{\"status\":\"healthy\"", ready);
    }

    [Fact]
    public async Task HitLatency_WellUnderAMillisecondInTheGateway()
    {
        await using var env = await CacheTestGateway.StartAsync();
        await env.SendAsync("acme", CacheTestGateway.Body());
        for (var i = 0; i < 200; i++)
        {
            await env.SendAsync("acme", CacheTestGateway.Body());
        }
        await WaitUntilAsync(() => env.Completions.All.Count == 201);

        // Time inside the gateway from routing to the end of the response, as the endpoint measures it.
        var hits = env.Completions.All.Where(c => c.Chat!.CacheHit).Select(c => c.Elapsed.TotalMilliseconds).Order().ToArray();
        Assert.Equal(200, hits.Length);
        var median = hits[hits.Length / 2];
        Assert.True(median < 1.0, $"median in-gateway hit time {median:F3} ms");
    }

    private static ChatCompletionOptions ToolOptions()
    {
        var options = new ChatCompletionOptions();
        options.Tools.Add(ChatTool.CreateFunctionTool("get_weather", "Weather for a city",
            BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}""")));
        options.Tools.Add(ChatTool.CreateFunctionTool("get_time", "Time in a zone",
            BinaryData.FromString("""{"type":"object","properties":{"zone":{"type":"string"},"utc":{"type":"boolean"}}}""")));
        return options;
    }

    private sealed record StreamResult(string? Id, string Content, ChatFinishReason? FinishReason,
        List<(string Id, string Name, string Arguments)> ToolCalls, (int, int, int)? Usage);

    private static async Task<StreamResult> CollectStreamAsync(AsyncCollectionResult<StreamingChatCompletionUpdate> updates)
    {
        string? id = null;
        var content = new StringBuilder();
        ChatFinishReason? finish = null;
        (int, int, int)? usage = null;
        var calls = new SortedDictionary<int, (string? Id, string? Name, StringBuilder Arguments)>();
        await foreach (var update in updates)
        {
            id ??= update.CompletionId;
            foreach (var part in update.ContentUpdate)
            {
                content.Append(part.Text);
            }
            foreach (var call in update.ToolCallUpdates)
            {
                if (!calls.TryGetValue(call.Index, out var entry))
                {
                    calls[call.Index] = entry = (null, null, new StringBuilder());
                }
                calls[call.Index] = (entry.Id ?? call.ToolCallId, entry.Name ?? call.FunctionName, entry.Arguments.Append(call.FunctionArgumentsUpdate?.ToString()));
            }
            finish ??= update.FinishReason;
            if (update.Usage is { } u)
            {
                usage = (u.InputTokenCount, u.OutputTokenCount, u.TotalTokenCount);
            }
        }
        return new StreamResult(id, content.ToString(), finish, calls.Values.Select(c => (c.Id!, c.Name!, c.Arguments.ToString())).ToList(), usage);
    }

    private static string? Header(System.ClientModel.Primitives.PipelineResponse response, string name) =>
        response.Headers.TryGetValue(name, out var value) ? value : null;

    internal static async Task WaitUntilAsync(Func<bool> condition, int seconds = 10)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not reached in time");
            await Task.Delay(10, Ct);
        }
    }
}
