using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text;
using System.Text.Json;
using LlmProxy.Simulator;
using OpenAI;
using OpenAI.Chat;
using static LlmProxy.Tests.Simulator.SimulatorHttp;
using Xunit;

namespace LlmProxy.Tests.Simulator;

/// <summary>The official OpenAI .NET SDK against the simulator: if the SDK reads it, the wire format is right.</summary>
public sealed class OpenAiSdkTests : IAsyncLifetime
{
    private const string ApiKey = "sk-sim-test-key";

    private static readonly ChatTool s_weatherTool = ChatTool.CreateFunctionTool(
        "get_weather",
        "Weather in a city",
        BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"},"metric":{"type":"boolean"}},"required":["city"]}"""));

    private static readonly ChatTool s_timeTool = ChatTool.CreateFunctionTool(
        "get_time",
        "Current time",
        BinaryData.FromString("""{"type":"object","properties":{"timezone":{"type":"string","enum":["UTC","CET"]}}}"""));

    private SimulatorServer _server = null!;

    public async ValueTask InitializeAsync() =>
        _server = await SimulatorServer.StartAsync(new SimulatorOptions { ExpectedApiKey = ApiKey }, ct: Ct);

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task CompleteChat_SimpleQuestion_ReturnsDeterministicReplyAndUsage()
    {
        var client = CreateChatClient();

        ChatCompletion completion = await client.CompleteChatAsync([new UserChatMessage("How are you?")], cancellationToken: Ct);

        Assert.Equal("Simulated reply to: How are you?", completion.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.Equal("gpt-4o-mini", completion.Model);
        Assert.StartsWith("chatcmpl-", completion.Id);
        Assert.Equal(6, completion.Usage.InputTokenCount);
        Assert.Equal(6, completion.Usage.OutputTokenCount);
        Assert.Equal(12, completion.Usage.TotalTokenCount);
        Assert.Equal("Bearer " + ApiKey, _server.Requests.Last?.Header("Authorization"));
    }

    [Fact]
    public async Task CompleteChat_MaxOutputTokens_FinishReasonLength()
    {
        var client = CreateChatClient();

        ChatCompletion completion = await client.CompleteChatAsync(
            [new UserChatMessage("one two three")],
            new ChatCompletionOptions { MaxOutputTokenCount = 3 },
            Ct);

        Assert.Equal(ChatFinishReason.Length, completion.FinishReason);
        Assert.Equal("Simulated reply to:", completion.Content[0].Text);
    }

    [Fact]
    public async Task CompleteChatStreaming_Content_ReassemblesToNonStreamedContentWithUsage()
    {
        var client = CreateChatClient();
        List<ChatMessage> messages = [new SystemChatMessage("Be nice."), new UserChatMessage("Tell me   a story\nabout a fox")];
        ChatCompletion expected = await client.CompleteChatAsync(messages, cancellationToken: Ct);

        var content = new StringBuilder();
        ChatFinishReason? finishReason = null;
        ChatTokenUsage? usage = null;
        var updates = 0;
        await foreach (var update in client.CompleteChatStreamingAsync(messages, cancellationToken: Ct))
        {
            updates++;
            foreach (var part in update.ContentUpdate)
            {
                content.Append(part.Text);
            }

            finishReason ??= update.FinishReason;
            usage ??= update.Usage;
        }

        Assert.Equal(expected.Content[0].Text, content.ToString());
        Assert.Equal(ChatFinishReason.Stop, finishReason);
        Assert.True(updates > 5, "content arrives in several updates");

        // The SDK asks for usage on its own (stream_options.include_usage), so the final chunk carries it.
        using var sent = JsonDocument.Parse(_server.Requests.Last!.Body);
        Assert.True(sent.RootElement.GetProperty("stream_options").GetProperty("include_usage").GetBoolean());
        Assert.NotNull(usage);
        Assert.Equal(expected.Usage.InputTokenCount, usage.InputTokenCount);
        Assert.Equal(expected.Usage.OutputTokenCount, usage.OutputTokenCount);
    }

    [Fact]
    public async Task CompleteChat_WithTools_ReturnsToolCallWithValidArguments()
    {
        var client = CreateChatClient();
        var options = new ChatCompletionOptions { Tools = { s_weatherTool, s_timeTool } };

        ChatCompletion completion = await client.CompleteChatAsync([new UserChatMessage("Weather in Oslo?")], options, Ct);

        Assert.Equal(ChatFinishReason.ToolCalls, completion.FinishReason);
        var call = Assert.Single(completion.ToolCalls);
        Assert.Equal("get_weather", call.FunctionName);
        Assert.StartsWith("call_", call.Id);
        using var arguments = JsonDocument.Parse(call.FunctionArguments);
        Assert.Equal("sample", arguments.RootElement.GetProperty("city").GetString());
        Assert.Equal(1, arguments.RootElement.GetProperty("days").GetInt32());
        Assert.True(arguments.RootElement.GetProperty("metric").GetBoolean());
    }

    [Fact]
    public async Task CompleteChat_ToolRoundTrip_AnswersWithToolResult()
    {
        var client = CreateChatClient();
        var options = new ChatCompletionOptions { Tools = { s_weatherTool } };
        List<ChatMessage> messages = [new UserChatMessage("Weather in Oslo?")];
        ChatCompletion first = await client.CompleteChatAsync(messages, options, Ct);

        messages.Add(new AssistantChatMessage(first));
        messages.Add(new ToolChatMessage(first.ToolCalls[0].Id, "Oslo: 3C, snow"));
        ChatCompletion second = await client.CompleteChatAsync(messages, options, Ct);

        Assert.Equal(ChatFinishReason.Stop, second.FinishReason);
        Assert.Equal("Simulated reply using tool results: Oslo: 3C, snow", second.Content[0].Text);
    }

    [Fact]
    public async Task CompleteChatStreaming_ParallelToolCalls_FragmentsReassembleToValidJson()
    {
        var client = CreateChatClient();
        var options = new ChatCompletionOptions { Tools = { s_weatherTool, s_timeTool } };
        ChatCompletion expected = await client.CompleteChatAsync([new UserChatMessage("Both, in parallel")], options, Ct);

        var ids = new Dictionary<int, string>();
        var names = new Dictionary<int, string>();
        var arguments = new Dictionary<int, StringBuilder>();
        var fragments = new Dictionary<int, int>();
        ChatFinishReason? finishReason = null;
        await foreach (var update in client.CompleteChatStreamingAsync([new UserChatMessage("Both, in parallel")], options, Ct))
        {
            finishReason ??= update.FinishReason;
            foreach (var toolCall in update.ToolCallUpdates)
            {
                if (toolCall.ToolCallId is { } id)
                {
                    ids[toolCall.Index] = id;
                }

                if (toolCall.FunctionName is { } name)
                {
                    names[toolCall.Index] = name;
                }

                var fragment = toolCall.FunctionArgumentsUpdate?.ToString() ?? string.Empty;
                if (fragment.Length > 0)
                {
                    (arguments.TryGetValue(toolCall.Index, out var builder) ? builder : arguments[toolCall.Index] = new StringBuilder()).Append(fragment);
                    fragments[toolCall.Index] = fragments.GetValueOrDefault(toolCall.Index) + 1;
                }
            }
        }

        Assert.Equal(ChatFinishReason.ToolCalls, finishReason);
        Assert.Equal(2, ids.Count);
        Assert.Equal(expected.ToolCalls.Select(c => c.FunctionName), names.OrderBy(n => n.Key).Select(n => n.Value));
        Assert.Equal(expected.ToolCalls.Select(c => c.FunctionArguments.ToString()), arguments.OrderBy(a => a.Key).Select(a => a.Value.ToString()));
        Assert.All(fragments.Values, count => Assert.True(count > 1));
        Assert.All(arguments.Values, json => JsonDocument.Parse(json.ToString()).Dispose());
    }

    [Fact]
    public async Task CompleteChat_WrongApiKey_ThrowsWith401()
    {
        var client = CreateChatClient(apiKey: "sk-wrong-key-123456");

        var exception = await Assert.ThrowsAsync<ClientResultException>(() => client.CompleteChatAsync([new UserChatMessage("hi")], cancellationToken: Ct));

        Assert.Equal(401, exception.Status);
        Assert.Contains("invalid_api_key", exception.Message);
    }

    [Fact]
    public async Task CompleteChat_StatusFault_ThrowsWithThatStatus()
    {
        _server.Faults.Set(SimulatorFault.Status(503), count: 1);
        var client = CreateChatClient();

        var exception = await Assert.ThrowsAsync<ClientResultException>(() => client.CompleteChatAsync([new UserChatMessage("hi")], cancellationToken: Ct));

        Assert.Equal(503, exception.Status);
        ChatCompletion recovered = await client.CompleteChatAsync([new UserChatMessage("hi")], cancellationToken: Ct);
        Assert.Equal("Simulated reply to: hi", recovered.Content[0].Text);
    }

    [Fact]
    public async Task CompleteChatStreaming_MidStreamError_EndsEarlyWithoutFinishReason()
    {
        // The SDK (2.15) does not turn OpenAI's in-stream error event into an exception: the enumeration just ends.
        // A caller (or a gateway) can only tell by the missing finish reason, which is what this pins down.
        _server.Faults.Set(SimulatorFault.MidStreamError(afterChunks: 2));
        var client = CreateChatClient();
        var content = new StringBuilder();
        ChatFinishReason? finishReason = null;

        var exception = await Record.ExceptionAsync(async () =>
        {
            await foreach (var update in client.CompleteChatStreamingAsync([new UserChatMessage("one two three")], cancellationToken: Ct))
            {
                finishReason ??= update.FinishReason;
                foreach (var part in update.ContentUpdate)
                {
                    content.Append(part.Text);
                }
            }
        });

        Assert.Null(exception);
        Assert.Null(finishReason);
        Assert.Equal("Simulated", content.ToString());
    }

    [Fact]
    public async Task CompleteChatStreaming_MidStreamAbort_Throws()
    {
        _server.Faults.Set(SimulatorFault.MidStreamAbort(afterChunks: 2));
        var client = CreateChatClient();
        var content = new StringBuilder();

        var exception = await Record.ExceptionAsync(async () =>
        {
            await foreach (var update in client.CompleteChatStreamingAsync([new UserChatMessage("one two three")], cancellationToken: Ct))
            {
                foreach (var part in update.ContentUpdate)
                {
                    content.Append(part.Text);
                }
            }
        });

        Assert.IsAssignableFrom<IOException>(exception);
        Assert.Equal("Simulated", content.ToString());
    }

    /// <summary>A client with retries off, so a fault reaches the test instead of being retried away.</summary>
    private ChatClient CreateChatClient(string apiKey = ApiKey) =>
        new("gpt-4o-mini", new ApiKeyCredential(apiKey), new OpenAIClientOptions
        {
            Endpoint = _server.OpenAiEndpoint,
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
        });
}
