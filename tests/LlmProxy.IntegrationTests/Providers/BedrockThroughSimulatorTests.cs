using System.Net;
using System.Text;
using System.Text.Json;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Simulator;
using OpenAI.Chat;

namespace LlmProxy.IntegrationTests.Providers;

/// <summary>
/// The official OpenAI .NET SDK → gateway → the simulator's Bedrock Runtime (SigV4 verified independently of the
/// gateway's signer, binary event stream encoded with AWS's codec). A Bedrock-routed model must be
/// indistinguishable from an OpenAI-routed one: the simulator answers both APIs with the same words.
/// </summary>
public sealed class BedrockThroughSimulatorTests : IAsyncLifetime
{
    private const string TenantKey = "sk-tenant-bedrock-0123456789";
    private readonly string _accessKeyVariable = "LLMPROXY_TEST_AWS_KEY_" + Guid.NewGuid().ToString("N");
    private readonly string _secretVariable = "LLMPROXY_TEST_AWS_SECRET_" + Guid.NewGuid().ToString("N");
    private readonly string _wrongSecretVariable = "LLMPROXY_TEST_AWS_WRONG_" + Guid.NewGuid().ToString("N");
    private SimulatorServer _bedrock = null!;
    private SimulatorServer _openAi = null!;
    private GatewayHost _gateway = null!;

    public async ValueTask InitializeAsync()
    {
        Environment.SetEnvironmentVariable(_accessKeyVariable, SimulatorOptions.DefaultBedrockAccessKeyId);
        Environment.SetEnvironmentVariable(_secretVariable, SimulatorOptions.DefaultBedrockSecretAccessKey);
        Environment.SetEnvironmentVariable(_wrongSecretVariable, "not-the-secret");
        _bedrock = await SimulatorServer.StartAsync(new SimulatorOptions());
        _openAi = await SimulatorServer.StartAsync(new SimulatorOptions());
        _gateway = await GatewayHost.StartAsync(Settings());
    }

    private GatewaySettings Settings() => new GatewaySettings()
        .Tenant("acme", TenantKey)
        .Deployment("claude", "bedrock-sim", "bedrock", _bedrock.BaseAddress.ToString(),
            upstreamModel: "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-7-sonnet-20250219-v1:0",
            configure: d => d.Set("Region", "us-east-1").Set("Settings:AccessKeyIdEnv", _accessKeyVariable).Set("Settings:SecretAccessKeyEnv", _secretVariable))
        .Deployment("claude-wrong-secret", "bedrock-wrong", "bedrock", _bedrock.BaseAddress.ToString(), upstreamModel: "anthropic.claude-3-haiku-20240307-v1:0",
            configure: d => d.Set("Region", "us-east-1").Set("Settings:AccessKeyIdEnv", _accessKeyVariable).Set("Settings:SecretAccessKeyEnv", _wrongSecretVariable))
        .OpenAi("gpt", "openai-sim", _openAi.BaseAddress)
        .Deployment("claude-with-fallback", "bedrock-primary", "bedrock", _bedrock.BaseAddress.ToString(), priority: 0, upstreamModel: "anthropic.claude-3-haiku-20240307-v1:0",
            configure: d => d.Set("Region", "us-east-1").Set("Settings:AccessKeyIdEnv", _accessKeyVariable).Set("Settings:SecretAccessKeyEnv", _secretVariable)
                .Set("Breaker:BreakDuration", "00:10:00"))
        .OpenAi("claude-with-fallback", "openai-fallback", _openAi.BaseAddress, priority: 1);

    public async ValueTask DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _bedrock.DisposeAsync();
        await _openAi.DisposeAsync();
        foreach (var variable in new[] { _accessKeyVariable, _secretVariable, _wrongSecretVariable })
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }

    [Fact]
    public async Task NonStreaming_SameAnswerAsTheOpenAiRoutedModel()
    {
        var messages = new ChatMessage[] { new SystemChatMessage("Be brief."), new UserChatMessage("Hello there") };

        var viaBedrock = (await _gateway.CreateChatClient("claude", TenantKey).CompleteChatAsync(messages)).Value;
        var viaOpenAi = (await _gateway.CreateChatClient("gpt", TenantKey).CompleteChatAsync(messages)).Value;

        Assert.Equal(viaOpenAi.Content[0].Text, viaBedrock.Content[0].Text);
        Assert.Equal("claude", viaBedrock.Model);
        Assert.Equal(ChatFinishReason.Stop, viaBedrock.FinishReason);
        Assert.Equal(viaOpenAi.Usage.InputTokenCount, viaBedrock.Usage.InputTokenCount);
        Assert.Equal(viaOpenAi.Usage.OutputTokenCount, viaBedrock.Usage.OutputTokenCount);
        Assert.StartsWith("chatcmpl-", viaBedrock.Id);
        // The ARN reached Bedrock escaped in the path, and the request was SigV4-signed.
        var upstream = _bedrock.Requests.Last!;
        Assert.Contains("arn%3Aaws%3Abedrock", upstream.Path);
        Assert.EndsWith("/converse", upstream.Path);
        Assert.StartsWith("AWS4-HMAC-SHA256 Credential=" + SimulatorOptions.DefaultBedrockAccessKeyId, upstream.Header("Authorization"));
        Assert.DoesNotContain(TenantKey, string.Join(" ", upstream.Headers.Values));
    }

    [Fact]
    public async Task Streaming_ReassemblesTheSameAnswer_WithUsageWhenAsked()
    {
        var client = _gateway.CreateChatClient("claude", TenantKey);
        var messages = new ChatMessage[] { new UserChatMessage("Stream me a few words please") };
        var whole = (await client.CompleteChatAsync(messages)).Value;

        var content = new StringBuilder();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        await foreach (var update in client.CompleteChatStreamingAsync(messages))
        {
            foreach (var part in update.ContentUpdate)
            {
                content.Append(part.Text);
            }
            finish ??= update.FinishReason;
            usage ??= update.Usage; // the SDK asks for include_usage itself
        }

        Assert.Equal(whole.Content[0].Text, content.ToString());
        Assert.Equal(ChatFinishReason.Stop, finish);
        Assert.Equal(whole.Usage.TotalTokenCount, usage!.TotalTokenCount);
        Assert.EndsWith("/converse-stream", _bedrock.Requests.Last!.Path);
    }

    [Fact]
    public async Task ToolsRoundTrip_ThroughBedrock()
    {
        var client = _gateway.CreateChatClient("claude", TenantKey);
        var options = new ChatCompletionOptions
        {
            Tools =
            {
                ChatTool.CreateFunctionTool("get_weather", "Weather", BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"}}}""")),
                ChatTool.CreateFunctionTool("get_time", "Time", BinaryData.FromString("""{"type":"object","properties":{"zone":{"type":"string"}}}""")),
            },
        };
        var messages = new List<ChatMessage> { new UserChatMessage("Call both in parallel please") };

        var first = (await client.CompleteChatAsync(messages, options)).Value;
        Assert.Equal(ChatFinishReason.ToolCalls, first.FinishReason);
        Assert.Equal(["get_weather", "get_time"], first.ToolCalls.Select(c => c.FunctionName));

        // The streamed tool calls carry the same ids' arguments, fragment by fragment.
        var streamed = new Dictionary<int, StringBuilder>();
        await foreach (var update in client.CompleteChatStreamingAsync(messages, options))
        {
            foreach (var part in update.ToolCallUpdates)
            {
                (streamed.TryGetValue(part.Index, out var sb) ? sb : streamed[part.Index] = new StringBuilder()).Append(part.FunctionArgumentsUpdate?.ToString());
            }
        }
        Assert.Equal(2, streamed.Count);
        Assert.Equal(first.ToolCalls[1].FunctionArguments.ToString(), streamed[1].ToString());

        messages.Add(new AssistantChatMessage(first.ToolCalls));
        messages.Add(new ToolChatMessage(first.ToolCalls[0].Id, "sunny"));
        messages.Add(new ToolChatMessage(first.ToolCalls[1].Id, "noon"));
        var final = (await client.CompleteChatAsync(messages, options)).Value;
        Assert.Equal(ChatFinishReason.Stop, final.FinishReason);
        Assert.Contains("sunny", final.Content[0].Text);
        Assert.Contains("noon", final.Content[0].Text);
    }

    [Fact]
    public async Task WrongSecret_Returns502NamingACredentialProblem_WithoutTheSecret()
    {
        using var http = _gateway.CreateClient(TenantKey);

        using var response = await http.PostAsync("/v1/chat/completions",
            new StringContent("""{"model":"claude-wrong-secret","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"));
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("upstream_authentication_failed", error.GetProperty("code").GetString());
        Assert.Contains("bedrock-wrong", error.GetProperty("message").GetString());
        Assert.DoesNotContain("not-the-secret", error.GetProperty("message").GetString());
        Assert.DoesNotContain(_gateway.Logs.Lines, l => l.Contains("not-the-secret", StringComparison.Ordinal) || l.Contains(SimulatorOptions.DefaultBedrockSecretAccessKey, StringComparison.Ordinal));
    }

    [Fact]
    public async Task BedrockValidationError_Returns400WithBedrocksMessage()
    {
        using var http = _gateway.CreateClient(TenantKey);

        using var response = await http.PostAsync("/v1/chat/completions",
            new StringContent("""{"model":"claude","temperature":1.7,"messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"));
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("temperature", error.GetProperty("message").GetString());
    }

    [Theory]
    [InlineData("claude", true)]
    [InlineData("gpt", false)]
    public async Task UpstreamRequestId_SuccessAndUpstreamError_InHeaderAndCompletionLog(string model, bool bedrock)
    {
        using var http = _gateway.CreateClient(TenantKey);
        var upstream = bedrock ? _bedrock : _openAi;

        using var served = await PostChatAsync(http, model);
        upstream.Faults.Set(SimulatorFault.Status(400), count: 1); // Bedrock: ValidationException
        using var rejected = await PostChatAsync(http, model);

        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, rejected.StatusCode);
        var servedId = UpstreamRequestId(served);
        var rejectedId = UpstreamRequestId(rejected);
        Assert.NotEqual(servedId, rejectedId);
        // Bedrock's x-amzn-RequestId is a UUID, OpenAI's x-request-id "req_...".
        Assert.True(bedrock ? Guid.TryParse(rejectedId, out _) : rejectedId.StartsWith("req_", StringComparison.Ordinal), rejectedId);
        // The per-request completion event carries the id too, for the error as for the success.
        Assert.Contains(_gateway.Logs.Lines, l => l.Contains("Chat completion", StringComparison.Ordinal) && l.Contains("status=200", StringComparison.Ordinal)
            && l.Contains($"upstream_request_id={servedId}", StringComparison.Ordinal));
        Assert.Contains(_gateway.Logs.Lines, l => l.Contains("Chat completion", StringComparison.Ordinal) && l.Contains("status=400", StringComparison.Ordinal)
            && l.Contains($"upstream_request_id={rejectedId}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task BedrockThrottling_WithoutRetryAfter_Returns429WithDefaultRetryAfterAndUpstreamId()
    {
        using var http = _gateway.CreateClient(TenantKey);
        _bedrock.Faults.Set(SimulatorFault.Status(429), count: 1); // ThrottlingException, and like Bedrock no Retry-After

        using var response = await PostChatAsync(http, "claude");
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");

        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.Equal("rate_limit_exceeded", error.GetProperty("code").GetString());
        Assert.Equal(TimeSpan.FromSeconds(1), response.Headers.RetryAfter?.Delta);
        Assert.True(Guid.TryParse(UpstreamRequestId(response), out _));
    }

    [Fact]
    public async Task BedrockThrottling_WithRetryAfter_PassesItOn()
    {
        using var http = _gateway.CreateClient(TenantKey);
        _bedrock.Faults.Set(SimulatorFault.Status(429, retryAfterSeconds: 7), count: 1);

        using var response = await PostChatAsync(http, "claude");

        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(7), response.Headers.RetryAfter?.Delta);
    }

    [Fact]
    public async Task Streaming_BedrockExceptionMidStream_TextSoFarThenErrorEventWithoutDone()
    {
        using var http = _gateway.CreateClient(TenantKey);
        var prompt = "Stream me a few words please";
        using var whole = await PostChatAsync(http, "claude", prompt);
        var wholeText = JsonDocument.Parse(await whole.Content.ReadAsStringAsync()).RootElement
            .GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        // messageStart and two text deltas go through, then Bedrock's throttlingException event ends the stream.
        _bedrock.Faults.Set(SimulatorFault.MidStreamError(afterChunks: 3, statusCode: 429), count: 1);

        using var response = await PostChatAsync(http, "claude", prompt, stream: true);
        var events = await Sse.ReadDataAsync(response);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(Guid.TryParse(UpstreamRequestId(response), out _));
        Assert.DoesNotContain("[DONE]", events);
        Assert.Equal(4, events.Count); // role chunk, two text chunks, the error
        var text = Sse.Content(events[..^1]);
        Assert.NotEmpty(text);
        Assert.StartsWith(text, wholeText, StringComparison.Ordinal);
        Assert.True(text.Length < wholeText.Length);
        var error = JsonDocument.Parse(events[^1]).RootElement.GetProperty("error");
        Assert.Equal("rate_limit_exceeded", error.GetProperty("code").GetString());
        Assert.Contains("bedrock-sim", error.GetProperty("message").GetString());
        Assert.True(error.TryGetProperty("type", out _) && error.TryGetProperty("param", out _));
    }

    [Fact]
    public async Task Streaming_BedrockExceptionMidStream_OpenAiSdkGetsPartialTextThenTheErrorAndNoFinish()
    {
        var client = _gateway.CreateChatClient("claude", TenantKey);
        _bedrock.Faults.Set(SimulatorFault.MidStreamError(afterChunks: 3), count: 1); // modelStreamErrorException

        var received = new StringBuilder();
        var updates = new List<StreamingChatCompletionUpdate>();
        await foreach (var update in client.CompleteChatStreamingAsync([new UserChatMessage("Stream me a few words please")]))
        {
            updates.Add(update);
            foreach (var part in update.ContentUpdate)
            {
                received.Append(part.Text);
            }
        }

        Assert.NotEmpty(received.ToString());
        Assert.All(updates, u => Assert.Null(u.FinishReason));
#pragma warning disable SCME0001 // JsonPatch: the SDK keeps members it does not model there
        Assert.True(updates[^1].Patch.TryGetJson("$.error"u8, out var errorJson), "the last update is the error event");
#pragma warning restore SCME0001
        var error = JsonDocument.Parse(errorJson).RootElement;
        Assert.Equal("upstream_error", error.GetProperty("type").GetString());
        Assert.Contains("bedrock-sim", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task CrossProvider_BedrockThrottling_FailsOverToOpenAi_BreakerOpensAfterThree()
    {
        using var http = _gateway.CreateClient(TenantKey);
        _bedrock.Faults.Set(SimulatorFault.Status(500));

        for (var i = 0; i < 10; i++)
        {
            using var response = await http.PostAsync("/v1/chat/completions",
                new StringContent("""{"model":"claude-with-fallback","messages":[{"role":"user","content":"Hello there"}]}""", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("openai-fallback", response.Headers.GetValues("x-llmproxy-deployment").Single());
            var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal("claude-with-fallback", body.GetProperty("model").GetString());
        }

        // Bedrock's default breaker opens after 3 consecutive failures: the other 7 requests never reached it.
        Assert.Equal(3, _bedrock.Requests.Count);
        Assert.Equal(10, _openAi.Requests.Count);
    }

    private static Task<HttpResponseMessage> PostChatAsync(HttpClient http, string model, string prompt = "Hello there", bool stream = false) =>
        http.PostAsync("/v1/chat/completions", new StringContent(JsonSerializer.Serialize(new
        {
            model,
            stream,
            messages = new[] { new { role = "user", content = prompt } },
        }), Encoding.UTF8, "application/json"));

    private static string UpstreamRequestId(HttpResponseMessage response) =>
        Assert.Single(response.Headers.GetValues("x-llmproxy-upstream-request-id"));
}
