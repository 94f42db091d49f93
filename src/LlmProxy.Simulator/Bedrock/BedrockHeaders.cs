using Microsoft.AspNetCore.Http;

namespace LlmProxy.Simulator.Bedrock;

/// <summary>The response header Bedrock puts on every answer, errors included, and that SDKs surface as the request id.</summary>
internal static class BedrockHeaders
{
    public const string RequestId = "x-amzn-RequestId";

    public static void Apply(HttpResponse response) => response.Headers[RequestId] = Guid.NewGuid().ToString();
}
