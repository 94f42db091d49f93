using System.Text;
using System.Text.Json.Nodes;
using LlmProxy.OpenAi;
using LlmProxy.Pipeline;
using LlmProxy.Routing;
using LlmProxy.Tenancy;

namespace LlmProxy.Tests.Caching;

internal static class CacheTestData
{
    public const string Completion = """
        {"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m","system_fingerprint":"fp_1","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}
        """;

    public const string ToolCompletion = """
        {"id":"chatcmpl-2","object":"chat.completion","created":1700000001,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":null,"tool_calls":[{"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},{"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{\"tz\":\"CET\"}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":9,"completion_tokens":20,"total_tokens":29}}
        """;

    public static JsonObject Body(string json) => (JsonObject)JsonNode.Parse(json)!;

    public static ChatRequest Request(string json)
    {
        Assert.True(ChatRequestParser.TryParse(Encoding.UTF8.GetBytes(json), out var request, out var error), error?.Error.Message);
        return request!;
    }

    public static ChatContext Chat(string json, string tenant = "acme", string model = "m", HttpContext? http = null)
    {
        http ??= new DefaultHttpContext();
        http.Response.Body = new MemoryStream();
        return new ChatContext(http, new TenantIdentity(new Tenant(tenant, null), tenant + "-key"), Request(json), new ModelRoute(model, [], new LlmProxy.Configuration.RetryBudgetOptions()));
    }

    public static string ResponseText(ChatContext chat)
    {
        var stream = (MemoryStream)chat.HttpContext.Response.Body;
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>The chunks a streaming OpenAI upstream would send for <see cref="Completion"/>-like content.</summary>
    public static IEnumerable<JsonObject> TextChunks(string content, string finishReason = "stop", int pieces = 3)
    {
        yield return Body("""{"id":"chatcmpl-s","object":"chat.completion.chunk","created":1700000002,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}""");
        var size = Math.Max(1, (content.Length + pieces - 1) / pieces);
        for (var i = 0; i < content.Length; i += size)
        {
            var piece = content.Substring(i, Math.Min(size, content.Length - i));
            var chunk = Body("""{"id":"chatcmpl-s","object":"chat.completion.chunk","created":1700000002,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":null}]}""");
            chunk["choices"]![0]!["delta"]!["content"] = piece;
            yield return chunk;
        }
        var last = Body("""{"id":"chatcmpl-s","object":"chat.completion.chunk","created":1700000002,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":null}]}""");
        last["choices"]![0]!["finish_reason"] = finishReason;
        yield return last;
    }

    public static TokenUsage Usage => new(5, 2, 7);
}
