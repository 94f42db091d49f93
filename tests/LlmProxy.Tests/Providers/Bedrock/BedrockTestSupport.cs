using Xunit;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Amazon.Runtime.EventStreams;
using LlmProxy.Configuration;
using LlmProxy.OpenAi;
using LlmProxy.Pipeline;
using LlmProxy.Providers;
using LlmProxy.Providers.Bedrock;
using LlmProxy.Routing;
using Microsoft.Extensions.Logging.Abstractions;

namespace LlmProxy.Tests.Providers.Bedrock;

/// <summary>Collects what a stream translator emits; chunks are stored as JSON text, as the client would see them.</summary>
internal sealed class RecordingSink : IChatStreamSink
{
    public List<string> Events { get; } = [];
    public List<JsonObject> Chunks { get; } = [];
    public OpenAiError? ErrorSent { get; private set; }
    public List<TokenUsage> Usages { get; } = [];

    public void Chunk(ReadOnlySpan<byte> chunkJson)
    {
        Assert.Null(ErrorSent); // nothing may follow an error
        Chunks.Add(JsonNode.Parse(chunkJson)!.AsObject());
        Events.Add(Encoding.UTF8.GetString(chunkJson));
    }

    public void Error(OpenAiError error)
    {
        Assert.Null(ErrorSent); // one terminal error at most
        ErrorSent = error;
        Events.Add("error:" + JsonSerializer.Serialize(error));
    }

    public void Usage(TokenUsage usage)
    {
        Usages.Add(usage);
        Events.Add("usage:" + usage);
    }
}

internal static class BedrockTest
{
    public static readonly DateTimeOffset Now = new(2025, 1, 2, 3, 4, 5, TimeSpan.Zero);

    public static ChatRequest Request(string json)
    {
        Assert.True(ChatRequestParser.TryParse(Encoding.UTF8.GetBytes(json), out var request, out var error), error?.Error.Message);
        return request!;
    }

    public static DeploymentOptions Options(Dictionary<string, string>? settings = null, string? upstreamModel = null, string region = "us-east-1") => new()
    {
        Provider = BedrockProvider.ProviderName,
        Configuration = Section(region),
        UpstreamModel = upstreamModel,
        Settings = new Dictionary<string, string>(settings ?? [], StringComparer.OrdinalIgnoreCase),
    };

    /// <summary>A deployment's configuration section holding the Bedrock-only keys, as binding from configuration sets it.</summary>
    public static IConfigurationSection Section(string? region) =>
        new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["d:Region"] = region }).Build().GetSection("d");

    public static BedrockProvider Provider(TimeProvider? time = null) => new(time ?? new FakeTimeProvider(Now), NullLoggerFactory.Instance);

    public static Deployment Deployment(DeploymentOptions? options = null, string id = "bedrock-test", string modelName = "claude", TimeProvider? time = null)
    {
        options ??= Options();
        var provider = Provider(time);
        return new Deployment(id, modelName, provider, options, provider.GetBaseUri(options), new NoAuthentication(),
            new HttpMessageInvoker(new SocketsHttpHandler()));
    }

    public static OpenAiBedrockTranslator Translator(string requestJson, DeploymentOptions? options = null, TimeProvider? time = null)
    {
        var request = Request(requestJson);
        time ??= new FakeTimeProvider(Now);
        return new OpenAiBedrockTranslator(request, Deployment(options, time: time), time);
    }

    public static JsonNode Parse(string json) => JsonNode.Parse(json)!;

    /// <summary>Compares JSON by value (property order ignored, array order kept) and prints both sides when they differ.</summary>
    public static void JsonEqual(string expected, string actual) => JsonEqual(Parse(expected), Parse(actual));

    public static void JsonEqual(JsonNode? expected, JsonNode? actual)
    {
        if (!JsonNode.DeepEquals(expected, actual))
        {
            var options = new JsonSerializerOptions { WriteIndented = true };
            Assert.Fail($"JSON differs.\nExpected:\n{expected?.ToJsonString(options)}\nActual:\n{actual?.ToJsonString(options)}");
        }
    }

    /// <summary>Replaces the random completion id after checking its form, so fixtures can compare whole objects.</summary>
    public static JsonObject NormalizeId(JsonObject completion)
    {
        Assert.Matches("^chatcmpl-[A-Za-z0-9]{29}$", completion["id"]!.GetValue<string>());
        completion["id"] = "chatcmpl-test";
        return completion;
    }

    private sealed class NoAuthentication : IUpstreamAuthenticator
    {
        public string? UnavailableReason => null;
        public ValueTask AuthenticateAsync(HttpRequestMessage request, ReadOnlyMemory<byte> body, CancellationToken cancellationToken) => ValueTask.CompletedTask;
    }
}

/// <summary>
/// Event-stream messages built with the AWS SDK's own codec (AWSSDK.Core), so tests do not check the
/// gateway's framing code against itself.
/// </summary>
internal static class AwsSdkEventStream
{
    public static byte[] Event(string eventType, string json) => Encode(
        [(":event-type", eventType), (":content-type", "application/json"), (":message-type", "event")], json);

    public static byte[] Exception(string exceptionType, string json) => Encode(
        [(":exception-type", exceptionType), (":content-type", "application/json"), (":message-type", "exception")], json);

    public static byte[] Encode(IEnumerable<(string Name, string Value)> headers, string payload)
    {
        var list = new List<IEventStreamHeader>();
        foreach (var (name, value) in headers)
        {
            var header = new EventStreamHeader(name);
            header.SetString(value);
            list.Add(header);
        }
        return new EventStreamMessage(list, Encoding.UTF8.GetBytes(payload)).ToByteArray();
    }

    public static EventStreamMessage Decode(byte[] message) => EventStreamMessage.FromBuffer(message, 0, message.Length);
}
