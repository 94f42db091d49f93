using System.Text;
using Amazon.Runtime.EventStreams;
using LlmProxy.Configuration;
using LlmProxy.OpenAi;
using LlmProxy.Providers;
using LlmProxy.Providers.Bedrock;
using LlmProxy.Providers.OpenAi;
using LlmProxy.Routing;

namespace LlmProxy.Benchmarks.Micro;

/// <summary>Request and response bodies shaped like what the gateway sees in production (and like the simulator's).</summary>
internal static class HotPathData
{
    public const int ContentChunks = 40;

    /// <summary>One short user message: the smallest realistic request.</summary>
    public static readonly byte[] SmallRequest = Encoding.UTF8.GetBytes(
        """{"model":"gpt-4o-mini","messages":[{"role":"user","content":"What is the capital of France?"}],"max_tokens":64}""");

    /// <summary>A system prompt, a few turns, sampling parameters and one tool: about 2 KB.</summary>
    public static readonly byte[] TypicalRequest = Encoding.UTF8.GetBytes($$$$"""
        {"model":"gpt-4o-mini","temperature":0.7,"top_p":1,"max_tokens":256,"user":"user-1234","stream":false,
         "messages":[
          {"role":"system","content":"{{{{Words("You are a helpful assistant for an online shop. Answer briefly and politely.", 4)}}}}"},
          {"role":"user","content":"{{{{Words("I ordered a blue jacket last week and it has not arrived yet.", 3)}}}}"},
          {"role":"assistant","content":"{{{{Words("I am sorry to hear that. Could you give me your order number?", 3)}}}}"},
          {"role":"user","content":"Sure, it is 48213. Can you also tell me when the store opens tomorrow?"}],
         "tools":[{"type":"function","function":{"name":"lookup_order","description":"Looks up an order by its number.",
           "parameters":{"type":"object","properties":{"order_id":{"type":"string","description":"The order number."},
           "include_items":{"type":"boolean"}},"required":["order_id"]}}}],
         "tool_choice":"auto"}
        """);

    /// <summary>A non-streamed chat.completion as the simulator answers it.</summary>
    public static readonly byte[] Completion = Encoding.UTF8.GetBytes($$$"""
        {"id":"chatcmpl-06dae00d2cd597f4705bf8e22e50","object":"chat.completion","created":1796490844,"model":"gpt-4o-mini",
         "choices":[{"index":0,"message":{"role":"assistant","content":"{{{Words("Simulated reply to: what is the capital of France?", 4)}}}","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],
         "usage":{"prompt_tokens":57,"completion_tokens":36,"total_tokens":93,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},
         "completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},
         "service_tier":"default","system_fingerprint":"fp_llmproxysim"}
        """.ReplaceLineEndings(""));

    /// <summary>An OpenAI stream: role chunk, <see cref="ContentChunks"/> one-word chunks, finish chunk, usage chunk, [DONE].</summary>
    public static readonly byte[] OpenAiStream = BuildOpenAiStream();

    /// <summary>The same answer as a Bedrock ConverseStream body (binary event stream).</summary>
    public static readonly byte[] BedrockStream = BuildBedrockStream();

    public static ChatRequest Parse(byte[] body) =>
        ChatRequestParser.TryParse(body, out var request, out var error) ? request! : throw new InvalidOperationException(error!.Error.Message);

    public static ChatRequest StreamRequest { get; } = Parse(Encoding.UTF8.GetBytes(
        """{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"What is the capital of France?"}]}"""));

    public static Deployment OpenAiDeployment()
    {
        var options = new LlmProxyOptions
        {
            Models = { ["gpt-4o-mini"] = new ModelRouteOptions { Deployments = { ["d1"] = new DeploymentOptions { Provider = "openai", BaseUrl = "http://127.0.0.1:9/v1" } } } },
        };
        return new GatewayConfigurationBuilder(new ProviderRegistry([new OpenAiProvider()])).Build(options, out var errors)?.Deployments["d1"]
            ?? throw new InvalidOperationException(string.Join("; ", errors));
    }

    private static string Words(string sentence, int times) => string.Join(' ', Enumerable.Repeat(sentence, times));

    private static byte[] BuildOpenAiStream()
    {
        var text = new StringBuilder();
        void Chunk(string delta, string finish = "null", string? usage = null, bool noChoices = false)
        {
            var choices = noChoices ? "[]" : $$"""[{"index":0,"delta":{{delta}},"logprobs":null,"finish_reason":{{finish}}}]""";
            text.Append($$"""data: {"id":"chatcmpl-06dae00d2cd597f4705bf8e22e50","object":"chat.completion.chunk","created":1796490844,"model":"gpt-4o-mini","service_tier":"default","system_fingerprint":"fp_llmproxysim","choices":{{choices}},"usage":{{usage ?? "null"}}}""");
            text.Append("\n\n");
        }
        Chunk("""{"role":"assistant","content":"","refusal":null}""");
        for (var i = 0; i < ContentChunks; i++)
        {
            Chunk($$"""{"content":"{{(i == 0 ? "" : " ")}}word{{i}}"}""");
        }
        Chunk("{}", "\"stop\"");
        Chunk("", usage: """{"prompt_tokens":10,"completion_tokens":40,"total_tokens":50,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}""", noChoices: true);
        text.Append("data: [DONE]\n\n");
        return Encoding.UTF8.GetBytes(text.ToString());
    }

    /// <summary>A Bedrock <c>event</c> message, encoded by AWSSDK.Core.</summary>
    private static byte[] BedrockEvent(string eventType, ReadOnlySpan<byte> json)
    {
        var headers = new List<IEventStreamHeader>();
        foreach (var (name, value) in new[] { (":event-type", eventType), (":content-type", "application/json"), (":message-type", "event") })
        {
            var header = new EventStreamHeader(name);
            header.SetString(value);
            headers.Add(header);
        }
        return new EventStreamMessage(headers, json.ToArray()).ToByteArray();
    }

    private static byte[] BuildBedrockStream()
    {
        var messages = new List<byte[]>
        {
            BedrockEvent("messageStart", """{"p":"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0","role":"assistant"}"""u8),
        };
        for (var i = 0; i < ContentChunks; i++)
        {
            messages.Add(BedrockEvent("contentBlockDelta",
                Encoding.UTF8.GetBytes($$"""{"contentBlockIndex":0,"delta":{"text":"{{(i == 0 ? "" : " ")}}word{{i}}"},"p":"abcdefghijklmnopqrstuvwxyzABCDEFGH"}""")));
        }
        messages.Add(BedrockEvent("contentBlockStop", """{"contentBlockIndex":0,"p":"abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"}"""u8));
        messages.Add(BedrockEvent("messageStop", """{"p":"abcdefghijklmnopqrstuvwxyz","stopReason":"end_turn"}"""u8));
        messages.Add(BedrockEvent("metadata", """{"metrics":{"latencyMs":120},"p":"abcdefghijklmnopqrstuvwxyzAB","usage":{"inputTokens":10,"outputTokens":40,"totalTokens":50}}"""u8));
        return messages.SelectMany(m => m).ToArray();
    }
}
