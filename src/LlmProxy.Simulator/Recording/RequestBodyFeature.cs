namespace LlmProxy.Simulator.Recording;

/// <summary>The request body, read once by the recorder and kept for the endpoint, since a request stream reads only once.</summary>
internal sealed class RequestBodyFeature(byte[] body)
{
    public byte[] Body { get; } = body;
}
