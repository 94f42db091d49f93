using LlmProxy.Configuration;
using LlmProxy.OpenAi;
using LlmProxy.Routing;

namespace LlmProxy.Providers;

/// <summary>
/// A kind of backend (OpenAI-compatible, Bedrock, ...). Providers are chosen by <see cref="Name"/> from
/// a deployment's <c>Provider</c> setting. A provider validates deployment settings at startup and
/// creates one <see cref="IChatTranslator"/> per upstream attempt, so per-request state (e.g. a stream
/// being translated) lives on the translator.
/// </summary>
public interface IChatProvider
{
    /// <summary>The value of a deployment's <c>Provider</c> setting that selects this provider.</summary>
    string Name { get; }

    /// <summary>Adds a message to <paramref name="errors"/> for every problem in <paramref name="options"/>; <paramref name="path"/> names the deployment in messages.</summary>
    void Validate(string path, DeploymentOptions options, ICollection<string> errors);

    /// <summary>The URL prefix requests are sent to. Only called for options that passed <see cref="Validate"/>.</summary>
    Uri GetBaseUri(DeploymentOptions options);

    /// <summary>Creates what signs or authorizes requests for one deployment. Called when configuration is loaded.</summary>
    IUpstreamAuthenticator CreateAuthenticator(string deploymentId, DeploymentOptions options);

    IChatTranslator CreateTranslator(ChatRequest request, Deployment deployment);

    /// <summary>Failures in a row that open a deployment's breaker unless configured. The default is 5.</summary>
    int DefaultConsecutiveFailures => 5;

    /// <summary>
    /// The <c>gen_ai.provider.name</c> of traces and metrics: the OpenTelemetry GenAI well-known value where one exists
    /// (<c>aws.bedrock</c>, <c>azure.ai.openai</c>, <c>gcp.vertex_ai</c>). The default is <see cref="Name"/>.
    /// </summary>
    string GenAiProviderName => Name;

    /// <summary>
    /// Response headers in which the upstream gives its own request id (successes and errors alike), tried in order; the
    /// first one present is passed on to the client as <c>x-llmproxy-upstream-request-id</c>. The default is none.
    /// </summary>
    IReadOnlyList<string> UpstreamRequestIdHeaders => [];
}

/// <summary>Adds the backend's own credentials to an upstream request. The client's gateway key is never forwarded.</summary>
public interface IUpstreamAuthenticator
{
    /// <summary>Null when requests can be authenticated; otherwise why the deployment is disabled (no secret values).</summary>
    string? UnavailableReason { get; }

    ValueTask AuthenticateAsync(HttpRequestMessage request, ReadOnlyMemory<byte> body, CancellationToken cancellationToken);

    /// <summary>
    /// Masks the secret this authenticator sends in <paramref name="text"/>, a value that came back from the upstream and is
    /// about to reach the client or a log: some servers repeat the key they were given (OpenAI's "Incorrect API key
    /// provided: sk-..."). The default returns the text unchanged, for authenticators that never send a secret (SigV4).
    /// </summary>
    string Redact(string text) => text;
}

/// <summary>Translates one request and its response between OpenAI's chat completion API and one backend's API.</summary>
public interface IChatTranslator
{
    /// <summary>Builds the upstream request. Throws <see cref="ChatRequestRejectedException"/> when the backend cannot honour the request.</summary>
    UpstreamRequest TranslateRequest();

    /// <summary>Translates a successful non-streamed upstream body into an OpenAI <c>chat.completion</c>.</summary>
    TranslatedResponse TranslateResponse(ReadOnlySpan<byte> upstreamBody);

    /// <summary>Translates a non-success upstream response into the error the client receives.</summary>
    UpstreamFailure TranslateError(HttpResponseMessage response, ReadOnlySpan<byte> upstreamBody);

    /// <summary>Creates the incremental translator for a successful streamed response.</summary>
    IChatStreamTranslator CreateStreamTranslator();
}

/// <summary>An upstream request: path relative to the deployment's base URL, the body, and the headers the backend's API needs.</summary>
public sealed record UpstreamRequest(string RelativePath, ReadOnlyMemory<byte> Body, string ContentType = "application/json")
{
    /// <summary>The <c>Accept</c> header; null means JSON, or server-sent events for a streamed request.</summary>
    public string? Accept { get; init; }

    /// <summary>
    /// Request headers the backend's API asks for (an API version such as <c>anthropic-version</c>, a beta flag). They are
    /// set before the authenticator runs, so a signer covers them and credentials cannot be overridden by them; content
    /// headers go in <see cref="ContentType"/>. The default is none.
    /// </summary>
    public IReadOnlyList<KeyValuePair<string, string>> Headers { get; init; } = [];
}

public sealed record TranslatedResponse(byte[] Body, Pipeline.TokenUsage? Usage);

/// <summary>Raised by a translator when a request cannot be expressed for its backend (a client error, 400).</summary>
public sealed class ChatRequestRejectedException(GatewayError error) : Exception(error.Error.Message)
{
    public GatewayError Error { get; } = error;
}

/// <summary>Incremental translation of a streamed upstream body into OpenAI <c>chat.completion.chunk</c>s.</summary>
public interface IChatStreamTranslator
{
    /// <summary>Consumes the next bytes of the upstream body (any split) and emits what they complete.</summary>
    void Process(ReadOnlySpan<byte> upstreamBytes, IChatStreamSink sink);

    /// <summary>
    /// The upstream body ended. A translator that had not seen the backend's end-of-response marker emits an
    /// error: a truncated stream must never look complete to the client.
    /// </summary>
    void Complete(IChatStreamSink sink);
}

/// <summary>
/// Where a stream translator sends what the client receives. Chunks travel as their JSON bytes: an OpenAI upstream's events
/// pass through with only <c>model</c> rewritten, and nothing downstream needs a JSON tree of them.
/// </summary>
public interface IChatStreamSink
{
    /// <summary>Sends one <c>chat.completion.chunk</c>, given as its JSON text (UTF-8), to the client. The bytes are copied before this returns.</summary>
    void Chunk(ReadOnlySpan<byte> chunkJson);

    /// <summary>Sends a terminal error event; nothing follows it.</summary>
    void Error(OpenAiError error);

    /// <summary>Reports the usage the upstream gave, whether or not it is sent to the client.</summary>
    void Usage(Pipeline.TokenUsage usage);
}

/// <summary>
/// Raised by an <see cref="IUpstreamAuthenticator"/> that cannot obtain credentials for a request (e.g. a credential
/// chain that finds nothing). The attempt fails as a retryable 502 naming a gateway credential problem. The message is
/// shown to the client: it names the deployment and never a secret.
/// </summary>
public sealed class UpstreamAuthenticationException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The upstream answered with something that is not what its API promises.</summary>
public sealed class UpstreamProtocolException(string message) : Exception(message);
