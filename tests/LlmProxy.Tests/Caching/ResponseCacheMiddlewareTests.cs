using System.Diagnostics.Metrics;
using System.Text;
using System.Text.Json.Nodes;
using LlmProxy.Caching;
using LlmProxy.Caching.Memory;
using LlmProxy.Pipeline;
using Microsoft.Extensions.Logging.Abstractions;

namespace LlmProxy.Tests.Caching;

public sealed class ResponseCacheMiddlewareTests : IDisposable
{
    private const string Request = """{"model":"m","messages":[{"role":"user","content":"hi"}]}""";
    private const string StreamRequest = """{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}""";
    private const string StreamRequestWithUsage = """{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}""";

    private readonly FakeTimeProvider _time = new();
    private readonly RecordingStore _store = new();
    private readonly FakeUpstream _upstream = new();
    private readonly IMeterFactory _meterFactory = TestMeterFactory.Create();
    private readonly CacheMetricsListener _metrics;

    public ResponseCacheMiddlewareTests() => _metrics = new CacheMetricsListener(_meterFactory);

    public void Dispose()
    {
        _metrics.Dispose();
        _meterFactory.Dispose();
    }

    private ResponseCacheMiddleware Create(ResponseCacheOptions? options = null, IResponseCacheStore? store = null) =>
        new(new ResponseCachePolicyProvider(options ?? new ResponseCacheOptions { Enabled = true }), store ?? _store,
            new ResponseCacheMetrics(new LlmProxy.Telemetry.GatewayMetrics(_meterFactory)), _time, NullLogger<ResponseCacheMiddleware>.Instance);

    private async Task<ChatContext> SendAsync(ResponseCacheMiddleware cache, string json = Request, string tenant = "acme",
        Action<HttpContext>? configure = null, CancellationTokenSource? abort = null)
    {
        var http = new DefaultHttpContext { RequestAborted = abort?.Token ?? CancellationToken.None };
        configure?.Invoke(http);
        var chat = CacheTestData.Chat(json, tenant, http: http);
        await cache.InvokeAsync(chat, _upstream.InvokeAsync);
        return chat;
    }

    private static string Content(ChatContext chat) =>
        JsonNode.Parse(CacheTestData.ResponseText(chat))!["choices"]![0]!["message"]!["content"]!.GetValue<string>();

    private static string StreamedContent(ChatContext chat)
    {
        var assembler = new StreamAssembler(1024 * 1024);
        foreach (var line in CacheTestData.ResponseText(chat).Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            Assert.StartsWith("data: ", line);
            if (line != "data: [DONE]")
            {
                assembler.Add((JsonObject)JsonNode.Parse(line["data: ".Length..])!);
            }
        }
        return JsonNode.Parse(assembler.Build(null)!)!["choices"]![0]!["message"]!["content"]!.GetValue<string>();
    }

    [Fact]
    public async Task InvokeAsync_CachingDisabled_PassesThroughWithoutStore()
    {
        var cache = Create(new ResponseCacheOptions());

        await SendAsync(cache);
        var second = await SendAsync(cache);

        Assert.Equal(2, _upstream.Calls);
        Assert.Equal(0, _store.Gets);
        Assert.False(second.CacheHit);
        Assert.Equal(0, _metrics.Count("llmproxy.cache.requests"));
    }

    [Fact]
    public async Task InvokeAsync_IdenticalRequest_ServedFromCacheAsHitWithoutUsage()
    {
        var cache = Create();

        var first = await SendAsync(cache);
        var second = await SendAsync(cache);

        Assert.Equal(1, _upstream.Calls);
        Assert.False(first.CacheHit);
        Assert.NotNull(first.Usage);
        Assert.True(second.CacheHit);
        Assert.Null(second.Usage);
        Assert.Equal(CacheTestData.ResponseText(first), CacheTestData.ResponseText(second));
        Assert.Equal("HIT", second.HttpContext.Response.Headers[ResponseCacheHeaders.Result].ToString());
        Assert.Equal("0", second.HttpContext.Response.Headers.Age.ToString());
        Assert.Equal("application/json", second.HttpContext.Response.ContentType);
        Assert.Equal(1, _metrics.Sum("llmproxy.cache.requests", ("result", "miss"), ("tenant", "acme"), ("model", "m")));
        Assert.Equal(1, _metrics.Sum("llmproxy.cache.requests", ("result", "hit"), ("tenant", "acme"), ("model", "m")));
        Assert.True(_metrics.Count("llmproxy.cache.store.duration") >= 3);
    }

    [Fact]
    public async Task InvokeAsync_AgeHeader_CountsSecondsSinceStored()
    {
        var cache = Create();
        await SendAsync(cache);
        _time.Advance(TimeSpan.FromSeconds(42.7));

        var hit = await SendAsync(cache);

        Assert.Equal("42", hit.HttpContext.Response.Headers.Age.ToString());
    }

    [Fact]
    public async Task InvokeAsync_SameRequestOtherTenant_NeverServedTheFirstTenantsEntry()
    {
        var cache = Create();

        var a = await SendAsync(cache, tenant: "a");
        var b = await SendAsync(cache, tenant: "b");
        var a2 = await SendAsync(cache, tenant: "a");
        var b2 = await SendAsync(cache, tenant: "b");

        Assert.Equal(2, _upstream.Calls);
        Assert.False(b.CacheHit);
        Assert.Equal("answer 1", Content(a2));
        Assert.Equal("answer 2", Content(b2));
        Assert.Equal(2, _store.Entries.Count);
        Assert.Single(_store.Entries.Keys, k => k.StartsWith("llmproxy:cache:a:", StringComparison.Ordinal));
        Assert.Single(_store.Entries.Keys, k => k.StartsWith("llmproxy:cache:b:", StringComparison.Ordinal));
        Assert.Equal("answer 1", Content(a));
    }

    [Fact]
    public async Task InvokeAsync_StoreFailing_RequestsSucceedAsMissesAndErrorsCounted()
    {
        _store.FailGets = true;
        _store.FailSets = true;
        var cache = Create();

        var first = await SendAsync(cache);
        var second = await SendAsync(cache);

        Assert.Equal(2, _upstream.Calls);
        Assert.Equal(200, second.HttpContext.Response.StatusCode);
        Assert.Equal("answer 2", Content(second));
        Assert.False(first.CacheHit || second.CacheHit);
        Assert.Equal(2, _metrics.Sum("llmproxy.cache.store.errors", ("store", "RecordingStore"), ("operation", "get")));
        Assert.Equal(2, _metrics.Sum("llmproxy.cache.store.errors", ("store", "RecordingStore"), ("operation", "set")));
        Assert.Equal(2, _metrics.Sum("llmproxy.cache.requests", ("result", "miss")));
    }

    [Fact]
    public async Task InvokeAsync_UpstreamError_NotStored()
    {
        _upstream.Fail = true;
        var cache = Create();

        await SendAsync(cache);
        var second = await SendAsync(cache);

        Assert.Equal(2, _upstream.Calls);
        Assert.Empty(_store.Sets);
        Assert.Equal(502, second.HttpContext.Response.StatusCode);
    }

    [Fact]
    public async Task InvokeAsync_TruncatedStream_NotStored()
    {
        _upstream.CutStreamShort = true;
        var cache = Create();

        await SendAsync(cache, StreamRequest);

        Assert.Empty(_store.Sets);
    }

    [Fact]
    public async Task InvokeAsync_StreamMissThenNonStreamHit_SameContent()
    {
        var cache = Create();

        var streamed = await SendAsync(cache, StreamRequest);
        var hit = await SendAsync(cache, Request);

        Assert.Equal(1, _upstream.Calls);
        Assert.True(hit.CacheHit);
        Assert.Equal(StreamedContent(streamed), Content(hit));
        var body = JsonNode.Parse(CacheTestData.ResponseText(hit))!;
        Assert.Equal("chat.completion", body["object"]!.GetValue<string>());
        Assert.Equal(7, body["usage"]!["total_tokens"]!.GetValue<int>());
    }

    [Fact]
    public async Task InvokeAsync_NonStreamMissThenStreamHit_ReplaysSameContentAndTellsObservers()
    {
        var cache = Create();
        var miss = await SendAsync(cache, Request);
        var observer = new CountingObserver();

        var http = new DefaultHttpContext();
        var hit = CacheTestData.Chat(StreamRequestWithUsage, http: http);
        hit.ResponseObservers.Add(observer);
        await cache.InvokeAsync(hit, _upstream.InvokeAsync);

        Assert.Equal(1, _upstream.Calls);
        Assert.True(hit.CacheHit);
        Assert.Null(hit.Usage);
        Assert.NotNull(hit.TimeToFirstToken);
        Assert.StartsWith("text/event-stream", hit.HttpContext.Response.ContentType);
        Assert.Equal(Content(miss), StreamedContent(hit));
        var text = CacheTestData.ResponseText(hit);
        Assert.EndsWith("data: [DONE]\n\n", text);
        Assert.Contains("\"usage\":{\"prompt_tokens\":5", text);
        Assert.True(observer.Chunks >= 3);
        Assert.Equal(1, observer.Ends);
    }

    [Fact]
    public async Task InvokeAsync_StreamHitWithoutIncludeUsage_NoUsageChunk()
    {
        var cache = Create();
        await SendAsync(cache, Request);

        var hit = await SendAsync(cache, StreamRequest);

        Assert.True(hit.CacheHit);
        Assert.DoesNotContain("usage", CacheTestData.ResponseText(hit));
    }

    [Fact]
    public async Task InvokeAsync_NoCache_SkipsLookupAndRefreshesEntry()
    {
        var cache = Create();
        await SendAsync(cache);

        var bypass = await SendAsync(cache, configure: h => h.Request.Headers.CacheControl = "no-cache");
        var after = await SendAsync(cache);

        Assert.Equal(2, _upstream.Calls);
        Assert.False(bypass.CacheHit);
        Assert.Equal(2, _store.Gets); // the bypassing request did not look up
        Assert.Equal("answer 2", Content(bypass));
        Assert.True(after.CacheHit);
        Assert.Equal("answer 2", Content(after));
        Assert.Equal(1, _metrics.Sum("llmproxy.cache.requests", ("result", "bypass")));
    }

    [Fact]
    public async Task InvokeAsync_NoStore_AnswerNotStored()
    {
        var cache = Create();

        await SendAsync(cache, configure: h => h.Request.Headers.CacheControl = "no-store");
        var second = await SendAsync(cache);

        Assert.Equal(2, _upstream.Calls);
        Assert.False(second.CacheHit);
        Assert.Single(_store.Sets);
    }

    [Fact]
    public async Task InvokeAsync_NoStoreWithExistingEntry_StillServedFromCache()
    {
        var cache = Create();
        await SendAsync(cache);

        var hit = await SendAsync(cache, configure: h => h.Request.Headers.CacheControl = "no-store");

        Assert.True(hit.CacheHit);
    }

    [Fact]
    public async Task InvokeAsync_TtlHeader_CappedByPolicyTtl()
    {
        var cache = Create(new ResponseCacheOptions { Enabled = true, Ttl = TimeSpan.FromMinutes(5) });

        await SendAsync(cache, """{"model":"m","messages":[{"role":"user","content":"a"}]}""", configure: h => h.Request.Headers[ResponseCacheHeaders.Ttl] = "30");
        await SendAsync(cache, """{"model":"m","messages":[{"role":"user","content":"b"}]}""", configure: h => h.Request.Headers[ResponseCacheHeaders.Ttl] = "86400");
        await SendAsync(cache, """{"model":"m","messages":[{"role":"user","content":"c"}]}""", configure: h => h.Request.Headers[ResponseCacheHeaders.Ttl] = "0");

        Assert.Equal([TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(5)], _store.Sets.Select(s => s.Ttl).ToArray());
    }

    [Fact]
    public async Task InvokeAsync_TenantDisallowsClientControls_HeadersIgnored()
    {
        var options = new ResponseCacheOptions { Enabled = true };
        options.Tenants["strict"] = new TenantResponseCacheOptions { AllowClientControls = false };
        var cache = Create(options);
        await SendAsync(cache, tenant: "strict");

        var noCache = await SendAsync(cache, tenant: "strict", configure: h => h.Request.Headers.CacheControl = "no-cache, no-store");
        await SendAsync(cache, """{"model":"m","messages":[{"role":"user","content":"x"}]}""", tenant: "strict",
            configure: h => h.Request.Headers[ResponseCacheHeaders.Ttl] = "1");

        Assert.True(noCache.CacheHit);
        Assert.Equal(1 + 1, _upstream.Calls);
        Assert.All(_store.Sets, s => Assert.Equal(TimeSpan.FromHours(1), s.Ttl));
    }

    [Fact]
    public async Task InvokeAsync_EntryOlderThanTtl_MissAgain()
    {
        var store = new MemoryResponseCacheStore(1024 * 1024, _time);
        var cache = Create(new ResponseCacheOptions { Enabled = true, Ttl = TimeSpan.FromMinutes(10) }, store);
        await SendAsync(cache);

        _time.Advance(TimeSpan.FromMinutes(9));
        var fresh = await SendAsync(cache);
        _time.Advance(TimeSpan.FromMinutes(1));
        var expired = await SendAsync(cache);

        Assert.True(fresh.CacheHit);
        Assert.False(expired.CacheHit);
        Assert.Equal(2, _upstream.Calls);
    }

    [Fact]
    public async Task InvokeAsync_ResponseOverMaxEntryBytes_NotStored()
    {
        var options = new ResponseCacheOptions { Enabled = true };
        options.Models["m"] = new ModelResponseCacheOptions { MaxEntryBytes = 50 };
        var cache = Create(options);

        await SendAsync(cache);
        await SendAsync(cache, StreamRequest);

        Assert.Empty(_store.Sets);
        Assert.Equal(2, _upstream.Calls);
    }

    [Fact]
    public async Task InvokeAsync_FiftyConcurrentIdenticalMisses_OneUpstreamCall()
    {
        var cache = Create();
        _upstream.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var requests = Enumerable.Range(0, 50).Select(i => Task.Run(() => SendAsync(cache, i % 2 == 0 ? Request : StreamRequest))).ToArray();
        await WaitUntilAsync(() => _upstream.Calls == 1);
        await Task.Delay(50, TestContext.Current.CancellationToken);
        _upstream.Gate.SetResult();
        var chats = await Task.WhenAll(requests).WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);

        Assert.Equal(1, _upstream.Calls);
        Assert.Equal(49, chats.Count(c => c.CacheHit));
        Assert.All(chats.Where(c => !c.Request.Stream), c => Assert.Equal("answer 1", Content(c)));
        Assert.All(chats.Where(c => c.Request.Stream), c => Assert.Equal("answer 1", StreamedContent(c)));
        Assert.Equal(0, cache.InFlight);
    }

    [Fact]
    public async Task InvokeAsync_LeaderFails_FollowersAskUpstreamThemselves()
    {
        var cache = Create();
        _upstream.Fail = true;
        _upstream.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var requests = Enumerable.Range(0, 5).Select(_ => Task.Run(() => SendAsync(cache))).ToArray();
        await WaitUntilAsync(() => _upstream.Calls == 1);
        await Task.Delay(50, TestContext.Current.CancellationToken);
        _upstream.Gate.SetResult();
        var chats = await Task.WhenAll(requests).WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);

        Assert.Equal(5, _upstream.Calls);
        Assert.All(chats, c => Assert.Equal(502, c.HttpContext.Response.StatusCode));
        Assert.Equal(0, cache.InFlight);
    }

    [Fact]
    public async Task InvokeAsync_FollowerClientGoesAway_StopsWaitingAtOnce()
    {
        var cache = Create();
        _upstream.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var leader = Task.Run(() => SendAsync(cache));
        await WaitUntilAsync(() => _upstream.Calls == 1);
        using var gone = new CancellationTokenSource();

        var follower = SendAsync(cache, abort: gone);
        await Task.Delay(20, TestContext.Current.CancellationToken);
        Assert.False(follower.IsCompleted);
        await gone.CancelAsync();
        var chat = await follower.WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);

        Assert.Equal("client_disconnected", chat.ErrorCode);
        _upstream.Gate.SetResult();
        await leader;
        Assert.Equal(1, _upstream.Calls);
    }

    [Fact]
    public async Task InvokeAsync_UnreadableEntry_TreatedAsMissAndReplaced()
    {
        var cache = Create();
        var key = ResponseCacheKey.Create("acme", "m", CacheTestData.Body(Request));
        _store.Entries[key] = [9, 9, 9];

        var chat = await SendAsync(cache);

        Assert.False(chat.CacheHit);
        Assert.Equal(200, chat.HttpContext.Response.StatusCode);
        Assert.True(CacheEntry.TryRead(_store.Entries[key], out _, out _));
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not reached in time");
            await Task.Delay(5, TestContext.Current.CancellationToken);
        }
    }

    private sealed class CountingObserver : IChatResponseObserver
    {
        public int Chunks;
        public int Ends;

        public void OnChunk(ReadOnlySpan<byte> chunkJson) => Chunks++;

        public void OnStreamEnd(bool completed) => Ends++;
    }
}
