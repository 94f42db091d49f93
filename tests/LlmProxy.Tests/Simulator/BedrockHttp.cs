using System.Buffers.Binary;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Amazon.Runtime;
using Amazon.Runtime.EventStreams;
using Amazon.Runtime.Internal;
using Amazon.Runtime.Internal.Auth;
using Amazon.Runtime.Internal.Util;
using LlmProxy.Simulator;
using Xunit;

namespace LlmProxy.Tests.Simulator;

/// <summary>
/// Talks to the simulator's Bedrock endpoints the way AWS's .NET SDK does: requests are signed by AWSSDK.Core's own
/// <see cref="AWS4Signer"/> (an implementation independent of the simulator's verifier), and event streams are decoded
/// with AWSSDK.Core's <see cref="EventStreamMessage"/>, which checks both CRCs of every message.
/// </summary>
internal static class BedrockHttp
{
    public const string AccessKeyId = SimulatorOptions.DefaultBedrockAccessKeyId;
    public const string Secret = SimulatorOptions.DefaultBedrockSecretAccessKey;
    public const string ModelId = "anthropic.claude-3-5-sonnet-20240620-v1:0";
    public const string ProfileArn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-7-sonnet-20250219-v1:0";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The path the SDK sends: the model id as one percent-encoded segment.</summary>
    public static string RawPath(string modelId, bool stream = false) =>
        $"/model/{Uri.EscapeDataString(modelId)}/{(stream ? "converse-stream" : "converse")}";

    /// <summary>A signed <c>POST</c> of <paramref name="json"/> to <paramref name="rawPath"/>, ready to send.</summary>
    public static HttpRequestMessage SignedRequest(
        Uri baseAddress,
        string rawPath,
        string json,
        string accessKeyId = AccessKeyId,
        string secret = Secret,
        DateTime? signedAt = null,
        string? sessionToken = null,
        string service = "bedrock")
    {
        var body = Encoding.UTF8.GetBytes(json);
        var headers = SignWithAwsSdk(baseAddress, rawPath, body, accessKeyId, secret, signedAt ?? DateTime.UtcNow, sessionToken, service);
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(baseAddress, rawPath)) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        foreach (var (name, value) in headers)
        {
            if (!name.Equals("host", StringComparison.OrdinalIgnoreCase) && !name.Equals("content-type", StringComparison.OrdinalIgnoreCase))
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }
        }

        return request;
    }

    /// <summary>
    /// Signs a Bedrock request with <see cref="AWS4Signer"/> as the generated Bedrock Runtime marshaller would set it up
    /// (resource path with a <c>{modelId}</c> label, JSON content type) and returns the headers to send.
    /// </summary>
    public static IDictionary<string, string> SignWithAwsSdk(
        Uri baseAddress,
        string rawPath,
        byte[] body,
        string accessKeyId,
        string secret,
        DateTime signedAt,
        string? sessionToken = null,
        string service = "bedrock")
    {
        var request = new DefaultRequest(new EmptyRequest(), "BedrockRuntime")
        {
            HttpMethod = "POST",
            Endpoint = new Uri(baseAddress.GetLeftPart(UriPartial.Authority)),
            Content = body,
        };

        // /model/{modelId}/converse: the label is filled with the decoded id, which the signer encodes itself.
        var segments = rawPath.Split('/');
        if (segments.Length == 4 && segments[1] == "model")
        {
            request.ResourcePath = $"/model/{{modelId}}/{segments[3]}";
            request.AddPathResource("{modelId}", StringUtils.FromString(Uri.UnescapeDataString(segments[2])));
        }
        else
        {
            request.ResourcePath = rawPath;
        }

        request.Headers["Content-Type"] = "application/json";
        if (sessionToken is not null)
        {
            request.Headers["x-amz-security-token"] = sessionToken;
        }

        var config = new SigningConfig(baseAddress, service);
        // SignRequest adds X-Amz-Date, X-Amz-Content-SHA256 and Host, and returns the signature; Sign would also set
        // Authorization, but needs a credentials identity, so it is set from the result here.
        var result = new AWS4Signer().SignRequest(request, config, null, accessKeyId, secret, signedAt);
        request.Headers["Authorization"] = result.ForAuthorizationHeader;
        return request.Headers;
    }

    public static async Task<HttpResponseMessage> PostConverseAsync(this HttpClient client, SimulatorServer server, string json, string modelId = ModelId, bool stream = false)
    {
        using var request = SignedRequest(server.BaseAddress, RawPath(modelId, stream), json);
        return await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
    }

    /// <summary>A Converse body with one user message.</summary>
    public static string UserConverse(string text, string extra = "") =>
        $$"""{"messages":[{"role":"user","content":[{"text":{{JsonSerializer.Serialize(text)}}}]}]{{extra}}}""";

    public const string WeatherToolConfig = """
        "toolConfig":{"tools":[
          {"toolSpec":{"name":"get_weather","description":"Weather in a city","inputSchema":{"json":{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["celsius","fahrenheit"]},"days":{"type":"integer"}},"required":["city"]}}}},
          {"toolSpec":{"name":"get_time","inputSchema":{"json":{"type":"object","properties":{"timezone":{"type":"string"},"precise":{"type":"boolean"}}}}}}
        ]}
        """;

    /// <summary>Reads an event stream to its end and decodes every message, checking its CRCs.</summary>
    public static async Task<List<EventStreamMessage>> ReadEventStreamAsync(this HttpResponseMessage response)
    {
        var bytes = await response.Content.ReadAsByteArrayAsync(Ct);
        return DecodeEventStream(bytes);
    }

    public static List<EventStreamMessage> DecodeEventStream(byte[] bytes)
    {
        var messages = new List<EventStreamMessage>();
        for (var offset = 0; offset < bytes.Length;)
        {
            Assert.True(bytes.Length - offset >= 16, "a truncated event-stream message");
            var totalLength = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(offset));
            // Each message is decoded from an array of its own: FromBuffer checks the message CRC from index 0 of the buffer.
            messages.Add(EventStreamMessage.FromBuffer(bytes[offset..(offset + totalLength)], 0, totalLength));
            offset += totalLength;
        }

        return messages;
    }

    public static string HeaderOf(this EventStreamMessage message, string name) => message.Headers[name].AsString();

    public static JsonElement PayloadOf(this EventStreamMessage message) => SimulatorHttp.Parse(Encoding.UTF8.GetString(message.Payload));

    public static async Task<(string Type, string Message)> ReadBedrockErrorAsync(this HttpResponseMessage response)
    {
        var errorType = response.Headers.TryGetValues("x-amzn-ErrorType", out var values) ? values.Single() : string.Empty;
        var body = await response.ReadJsonAsync();
        return (errorType, body.GetProperty("message").GetString()!);
    }

    private sealed class EmptyRequest : AmazonWebServiceRequest;

    /// <summary>The client configuration <see cref="AWS4Signer"/> reads: the signing region and service name.</summary>
    private sealed class SigningConfig : ClientConfig
    {
        public SigningConfig(Uri baseAddress, string service)
            : base(null!)
        {
            ServiceURL = baseAddress.ToString();
            AuthenticationRegion = "us-east-1";
            AuthenticationServiceName = service;
        }

        public override string RegionEndpointServiceName => "bedrock-runtime";

        public override string ServiceVersion => "2023-09-30";

        public override string UserAgent => "llmproxy-tests";

        public override Amazon.Runtime.Endpoints.Endpoint DetermineServiceOperationEndpoint(Amazon.Runtime.Endpoints.ServiceOperationEndpointParameters parameters) =>
            new(ServiceURL);
    }
}
