using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Simulator;

namespace LlmProxy.IntegrationTests.Telemetry;

/// <summary>The per-request completion event (3001) through the real gateway: its fields, and no secret in any log.</summary>
public sealed class RequestLogTests : IAsyncLifetime
{
    private const string TenantKey = "sk-tenant-logs-0123456789abcdef";
    private const string UpstreamKey = "sk-upstream-logs-secret-9876543210";
    private const string Prompt = "The launch code is PROMPT-SECRET-7731";
    private readonly string _upstreamKeyVariable = "LLMPROXY_TEST_UPSTREAM_KEY_" + Guid.NewGuid().ToString("N");
    private readonly StructuredLogs _events = new();
    private SimulatorServer _simulator = null!;
    private GatewayHost _gateway = null!;

    public async ValueTask InitializeAsync()
    {
        Environment.SetEnvironmentVariable(_upstreamKeyVariable, UpstreamKey);
        _simulator = await SimulatorServer.StartAsync(new SimulatorOptions { ExpectedApiKey = UpstreamKey });
        _gateway = await GatewayHost.StartAsync(new GatewaySettings()
                .Tenant("acme", TenantKey)
                .OpenAi("gpt-logs", "logs-primary", _simulator.BaseAddress, apiKeyEnv: _upstreamKeyVariable),
            services => services.AddSingleton<ILoggerProvider>(_events));
    }

    public async ValueTask DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _simulator.DisposeAsync();
        Environment.SetEnvironmentVariable(_upstreamKeyVariable, null);
    }

    [Fact]
    public async Task CompletionEvent_ServedFailedAndStreamed_CarriesRequestIdAndOutcomeButNoKeyOrPrompt()
    {
        using var http = _gateway.CreateClient(TenantKey);

        using var served = await PostAsync(http, $$"""{"model":"gpt-logs","messages":[{"role":"user","content":"{{Prompt}}"}]}""", requestId: "client-req-42");
        var servedUsage = JsonDocument.Parse(await served.Content.ReadAsStringAsync()).RootElement.GetProperty("usage");
        using var streamed = await PostAsync(http,
            $$"""{"model":"gpt-logs","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"{{Prompt}}"}]}""");
        var streamedUsage = UsageOfStream(await streamed.Content.ReadAsStringAsync());
        using var unknown = await PostAsync(http, $$"""{"model":"no-such-model","messages":[{"role":"user","content":"{{Prompt}}"}]}""");
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        Assert.Equal(HttpStatusCode.OK, streamed.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);

        // The event is written when the endpoint returns, which can be just after the client has its response.
        var completions = await _events.WaitForAsync(e => e.EventId == 3001, count: 3);
        var byId = completions.ToDictionary(e => (string)e.State["GatewayRequestId"]!);

        var first = byId["client-req-42"];
        Assert.Equal("client-req-42", served.Headers.GetValues("x-request-id").Single());
        Assert.Equal("acme", first.State["Tenant"]);
        Assert.Equal("gpt-logs", first.State["Model"]);
        Assert.Equal("logs-primary", first.State["Deployment"]);
        Assert.Equal(200, first.State["Status"]);
        Assert.Equal(false, first.State["Stream"]);
        Assert.InRange((double)first.State["LatencyMs"]!, 0.001, 60_000);
        Assert.Equal(servedUsage.GetProperty("prompt_tokens").GetInt32(), first.State["PromptTokens"]);
        Assert.Equal(servedUsage.GetProperty("completion_tokens").GetInt32(), first.State["CompletionTokens"]);
        Assert.Contains("request_id=client-req-42 ", first.Message, StringComparison.Ordinal);

        // Without a client id, the event has the id the gateway made up and returned.
        var second = byId[streamed.Headers.GetValues("x-request-id").Single()];
        Assert.StartsWith("req_", (string)second.State["GatewayRequestId"]!, StringComparison.Ordinal);
        Assert.Equal(true, second.State["Stream"]);
        Assert.Equal(200, second.State["Status"]);
        Assert.Equal(streamedUsage.PromptTokens, second.State["PromptTokens"]);
        Assert.Equal(streamedUsage.CompletionTokens, second.State["CompletionTokens"]);

        var third = byId[unknown.Headers.GetValues("x-request-id").Single()];
        Assert.Equal(404, third.State["Status"]);
        Assert.Null(third.State["Deployment"]);
        Assert.Equal("no-such-model", third.State["Model"]);

        // Every line the gateway logged (messages, state, scopes, exceptions): no key, no prompt.
        var everything = _gateway.Logs.Lines.Concat(_events.Entries.Select(e => e.ToString())).ToList();
        Assert.NotEmpty(everything);
        foreach (var secret in new[] { TenantKey, UpstreamKey, "PROMPT-SECRET-7731", "launch code" })
        {
            Assert.DoesNotContain(everything, line => line.Contains(secret, StringComparison.Ordinal));
        }
    }

    private static async Task<HttpResponseMessage> PostAsync(HttpClient http, string body, string? requestId = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (requestId is not null)
        {
            request.Headers.Add("x-request-id", requestId);
        }
        return await http.SendAsync(request);
    }

    private static (int PromptTokens, int CompletionTokens) UsageOfStream(string sse)
    {
        foreach (var line in sse.Split('\n'))
        {
            if (line.StartsWith("data: {", StringComparison.Ordinal) && JsonDocument.Parse(line["data: ".Length..]).RootElement.TryGetProperty("usage", out var usage)
                && usage.ValueKind == JsonValueKind.Object)
            {
                return (usage.GetProperty("prompt_tokens").GetInt32(), usage.GetProperty("completion_tokens").GetInt32());
            }
        }
        throw new InvalidOperationException("no usage chunk in the stream:\n" + sse);
    }

    /// <summary>Log events with their structured state, as a log pipeline receives them.</summary>
    private sealed class StructuredLogs : ILoggerProvider
    {
        public ConcurrentQueue<LogEvent> Entries { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public async Task<IReadOnlyList<LogEvent>> WaitForAsync(Func<LogEvent, bool> match, int count)
        {
            var deadline = Stopwatch.StartNew();
            while (true)
            {
                var found = Entries.Where(match).ToList();
                if (found.Count >= count)
                {
                    return found;
                }
                Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(10), $"{found.Count} of {count} log events after 10 s");
                await Task.Delay(10);
            }
        }

        public void Dispose()
        {
        }

        private sealed class Logger(StructuredLogs owner, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                var values = new Dictionary<string, object?>(StringComparer.Ordinal);
                if (state is IEnumerable<KeyValuePair<string, object?>> properties)
                {
                    foreach (var (key, value) in properties)
                    {
                        values[key] = value;
                    }
                }
                owner.Entries.Enqueue(new LogEvent(category, eventId.Id, formatter(state, exception), values, exception?.ToString()));
            }
        }
    }

    private sealed record LogEvent(string Category, int EventId, string Message, IReadOnlyDictionary<string, object?> State, string? Exception)
    {
        public override string ToString() =>
            $"{Category} {EventId} {Message} {string.Join(" ", State.Select(p => $"{p.Key}={p.Value}"))} {Exception}";
    }
}
