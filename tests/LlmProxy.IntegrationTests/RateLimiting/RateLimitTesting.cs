using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Pipeline;
using LlmProxy.RateLimiting;
using LlmProxy.Simulator;

namespace LlmProxy.IntegrationTests.RateLimiting;

/// <summary>Settings, requests and probes shared by the rate limit tests.</summary>
internal static class RateLimitTesting
{
    public const string Model = "gpt-test";
    public const string AcmeKey = "sk-acme-ratelimit-0123456789";
    public const string AcmeKeyId = "acme-key";

    /// <summary>
    /// The simulator answers this with usage 5 prompt + 5 completion = 10 tokens (a token is a word; 3 per message).
    /// The gateway reserves 60 for it: prompt estimate ceil(11 chars / 4) + 4 per message + 3 = 10, plus max_tokens 50.
    /// </summary>
    public const string HelloBody = """{"model":"gpt-test","messages":[{"role":"user","content":"Hello there"}],"max_tokens":50}""";
    public const int HelloUsage = 10;
    public const int HelloReservation = 60;

    public static GatewaySettings Settings(SimulatorServer simulator) =>
        new GatewaySettings().Tenant("acme", AcmeKey).OpenAi(Model, "sim", simulator.BaseAddress);

    /// <summary>Sets <c>LlmProxy:RateLimits:{path}</c>.</summary>
    public static GatewaySettings Limit(this GatewaySettings settings, string path, object value) =>
        settings.Set("LlmProxy:RateLimits:" + path, Convert.ToString(value, CultureInfo.InvariantCulture));

    public static GatewaySettings RedisStore(this GatewaySettings settings, string configuration, string keyPrefix) =>
        settings.Limit("Store", "redis").Limit("Redis:Configuration", configuration).Limit("Redis:KeyPrefix", keyPrefix);

    public static Task<HttpResponseMessage> SendAsync(HttpClient http, string body = HelloBody, CancellationToken cancellationToken = default) =>
        http.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"), cancellationToken);

    public static string Header(this HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? string.Join(",", values) : "";

    public static async Task<JsonElement> ErrorAsync(this HttpResponseMessage response)
    {
        var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("error").Clone();
    }

    public static void AssertNoServerErrors(IEnumerable<HttpStatusCode> statuses) =>
        Assert.DoesNotContain(statuses, s => s == HttpStatusCode.InternalServerError);
}

/// <summary>Tells the test when requests have ended: the limiter's reconciliation and spend recording happen before.</summary>
internal sealed class CompletionSignal : IChatRequestCompletionListener
{
    private readonly Channel<ChatRequestCompletion> _completed = Channel.CreateUnbounded<ChatRequestCompletion>();

    public void OnCompleted(ChatRequestCompletion completion) => _completed.Writer.TryWrite(completion);

    public Task<ChatRequestCompletion> NextAsync() => _completed.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
}

/// <summary>A chat stage after the limiter: tells the test when a request has been admitted.</summary>
internal sealed class AdmittedProbe : IChatMiddleware
{
    private readonly Channel<ChatContext> _admitted = Channel.CreateUnbounded<ChatContext>();

    public Task InvokeAsync(ChatContext context, ChatDelegate next)
    {
        _admitted.Writer.TryWrite(context);
        return next(context);
    }

    public Task<ChatContext> NextAsync() => _admitted.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
}

/// <summary>Every served request costs the same.</summary>
internal sealed class FixedCostSource(decimal costUsd) : IRequestCostSource
{
    public decimal? GetCost(ChatRequestCompletion completion) => completion.StatusCode == 200 ? costUsd : null;
}
