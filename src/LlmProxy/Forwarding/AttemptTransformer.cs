using System.Buffers;
using System.Net.Http.Headers;
using System.Runtime.InteropServices;
using LlmProxy.OpenAi;
using LlmProxy.Pipeline;
using LlmProxy.Providers;
using LlmProxy.Routing;
using Yarp.ReverseProxy.Forwarder;

namespace LlmProxy.Forwarding;

/// <summary>
/// YARP transform for one upstream attempt. The request is built from the translated body (the client's
/// headers, its gateway key first of all, are never copied); the response is classified before anything
/// reaches the client, so a failing deployment can still be replaced by the next one.
/// </summary>
internal sealed class AttemptTransformer : HttpTransformer
{
    /// <summary>Largest upstream body the gateway buffers: a non-streamed completion or an error.</summary>
    private const int MaxBufferedResponseBytes = 32 * 1024 * 1024;
    private const int MaxErrorBodyBytes = 64 * 1024;
    private const int MaxUpstreamRequestIdLength = 256;
    private static readonly MediaTypeHeaderValue JsonContentType = new("application/json");
    private static readonly MediaTypeWithQualityHeaderValue AcceptJson = new("application/json");
    private static readonly MediaTypeWithQualityHeaderValue AcceptEventStream = new("text/event-stream");

    private readonly ChatContext _chat;
    private readonly Deployment _deployment;
    private readonly IChatTranslator _translator;
    private readonly UpstreamRequest _request;
    private TranslatingStream? _stream;

    public AttemptTransformer(ChatContext chat, Deployment deployment, IChatTranslator translator, UpstreamRequest request)
    {
        _chat = chat;
        _deployment = deployment;
        _translator = translator;
        _request = request;
    }

    /// <summary>The classified failure, when the attempt failed in a way the transformer saw.</summary>
    public UpstreamFailure? Failure { get; private set; }

    /// <summary>True once a response for the client has been produced from this attempt.</summary>
    public bool Responded { get; private set; }

    /// <summary>The request id the upstream put on its answer (success or error), when it answered with one.</summary>
    public string? UpstreamRequestId { get; private set; }

    /// <summary>A stream that failed before its first byte reached the client, when there was one.</summary>
    public UpstreamFailure? StreamFailureBeforeFirstByte => _stream?.FailureBeforeFirstByte;

    public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
    {
        proxyRequest.Method = HttpMethod.Post;
        proxyRequest.RequestUri = new Uri(destinationPrefix + _request.RelativePath, UriKind.Absolute);
        // YARP sends the body it set up itself (its content streams HttpContext.Request.Body, read when the request goes out)
        // and refuses a replaced HttpContent: the translated bytes become the request body, as YARP's transform docs show.
        // A new stream over the same bytes per attempt, so a failover sends them again from the start.
        var content = proxyRequest.Content
            ?? throw new InvalidOperationException("The forwarder set up no request body; a chat request always has one.");
        httpContext.Request.Body = ReadOnlyStream(_request.Body);
        content.Headers.ContentLength = _request.Body.Length;
        content.Headers.ContentType = _request.ContentType == "application/json" ? JsonContentType : new MediaTypeHeaderValue(_request.ContentType);
        proxyRequest.Headers.Accept.Add(_request.Accept is { } accept ? new MediaTypeWithQualityHeaderValue(accept)
            : _chat.Request.Stream ? AcceptEventStream : AcceptJson);
        foreach (var (name, value) in _request.Headers)
        {
            proxyRequest.Headers.Remove(name);
            if (!proxyRequest.Headers.TryAddWithoutValidation(name, value))
            {
                throw new InvalidOperationException($"Provider '{_deployment.ProviderName}' asked for header '{name}', which is not a request header.");
            }
        }
        try
        {
            await _deployment.Authenticator.AuthenticateAsync(proxyRequest, _request.Body, cancellationToken);
        }
        catch (UpstreamAuthenticationException ex)
        {
            // YARP reports the exception as a request-creation error; this failure says what it really was.
            Failure = new UpstreamFailure(StatusCodes.Status502BadGateway, new OpenAiError(ex.Message, "upstream_error", null, "upstream_authentication_failed"),
                IsRetryable: true, "credentials_unavailable");
            throw;
        }
    }

    public override async ValueTask<bool> TransformResponseAsync(HttpContext httpContext, HttpResponseMessage? proxyResponse, CancellationToken cancellationToken)
    {
        if (proxyResponse is null)
        {
            // YARP could not get a response (connect error, timeout); it has recorded why in IForwarderErrorFeature.
            return false;
        }

        UpstreamRequestId = ReadUpstreamRequestId(proxyResponse, _deployment.Provider.UpstreamRequestIdHeaders) is { } upstreamId ? _deployment.Authenticator.Redact(upstreamId) : null;
        var status = (int)proxyResponse.StatusCode;
        if (status is < 200 or >= 300)
        {
            var errorBody = await TryReadAsync(proxyResponse.Content, MaxErrorBodyBytes, cancellationToken);
            Failure = Redact(_translator.TranslateError(proxyResponse, errorBody.Span));
            return false;
        }

        if (_chat.Request.Stream)
        {
            var upstream = await proxyResponse.Content.ReadAsStreamAsync(cancellationToken);
            var sink = new ClientStreamSink(_chat, _deployment.Authenticator);
            _stream = new TranslatingStream(upstream, _translator.CreateStreamTranslator(), sink, _deployment.Id, httpContext.RequestAborted);
            proxyResponse.Content = new TranslatingContent(_stream, proxyResponse.Content);
            var response = httpContext.Response;
            _stream.ClientResponse = response;
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = "text/event-stream; charset=utf-8";
            response.Headers.CacheControl = "no-cache";
            // Tell buffering reverse proxies in front of the gateway (nginx) to pass events through at once.
            response.Headers["X-Accel-Buffering"] = "no";
            SetServedHeaders(httpContext);
            Responded = true;
            return true;
        }

        ReadOnlyMemory<byte> body;
        try
        {
            body = await ReadAsync(proxyResponse.Content, MaxBufferedResponseBytes, cancellationToken);
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException or InvalidDataException)
        {
            Failure = new UpstreamFailure(StatusCodes.Status502BadGateway, new OpenAiError(
                $"Deployment '{_deployment.Id}' closed the connection before its response was complete.", "upstream_error", null, "upstream_error"),
                IsRetryable: true, "response_body_error");
            return false;
        }

        TranslatedResponse translated;
        try
        {
            translated = _translator.TranslateResponse(body.Span);
        }
        catch (UpstreamProtocolException ex)
        {
            Failure = new UpstreamFailure(StatusCodes.Status502BadGateway, new OpenAiError(ex.Message, "upstream_error", null, "upstream_protocol_error"),
                IsRetryable: true, "protocol_error");
            return false;
        }

        _chat.Usage = translated.Usage;
        foreach (var observer in _chat.ResponseObservers)
        {
            observer.OnResponse(translated.Body);
        }
        var httpResponse = httpContext.Response;
        httpResponse.StatusCode = StatusCodes.Status200OK;
        httpResponse.ContentType = "application/json";
        httpResponse.ContentLength = translated.Body.Length;
        SetServedHeaders(httpContext);
        Responded = true;
        await httpResponse.Body.WriteAsync(translated.Body, cancellationToken);
        return false;
    }

    /// <summary>A read-only stream over <paramref name="body"/> without copying it (translators write into arrays).</summary>
    private static MemoryStream ReadOnlyStream(ReadOnlyMemory<byte> body) =>
        MemoryMarshal.TryGetArray(body, out var segment)
            ? new MemoryStream(segment.Array!, segment.Offset, segment.Count, writable: false)
            : new MemoryStream(body.ToArray(), writable: false);

    private void SetServedHeaders(HttpContext httpContext)
    {
        var headers = httpContext.Response.Headers;
        headers[GatewayHeaders.Deployment] = _deployment.Id;
        headers[GatewayHeaders.Attempts] = _chat.Attempts.ToString(System.Globalization.CultureInfo.InvariantCulture);
        _chat.UpstreamRequestId = UpstreamRequestId;
        if (UpstreamRequestId is not null)
        {
            headers[GatewayHeaders.UpstreamRequestId] = UpstreamRequestId;
        }
    }

    /// <summary>
    /// The upstream's own request id from the first of the provider's <see cref="IChatProvider.UpstreamRequestIdHeaders"/>
    /// that the response carries. Only a short printable-ASCII id is passed on: the value becomes a response header, and a
    /// stray byte would fail the response.
    /// </summary>
    internal static string? ReadUpstreamRequestId(HttpResponseMessage response, IReadOnlyList<string> headerNames)
    {
        foreach (var name in headerNames)
        {
            if (response.Headers.TryGetValues(name, out var ids))
            {
                return ids.FirstOrDefault() is { Length: > 0 and <= MaxUpstreamRequestIdLength } id && id.All(c => c is > ' ' and <= '~')
                    ? id
                    : null;
            }
        }
        return null;
    }

    /// <summary>
    /// Upstream text that can reach the client or a log (a passed-through error message, the upstream's request id) with the
    /// deployment's own secret masked: some upstreams repeat the key they were sent.
    /// </summary>
    private UpstreamFailure Redact(UpstreamFailure failure)
    {
        var authenticator = _deployment.Authenticator;
        return failure with
        {
            Error = RedactError(authenticator, failure.Error),
            // The id read (and screened) from this response's headers, already redacted.
            UpstreamRequestId = UpstreamRequestId,
        };
    }

    internal static OpenAiError RedactError(IUpstreamAuthenticator authenticator, OpenAiError error) => error with
    {
        Message = authenticator.Redact(error.Message),
        Param = error.Param is { } param ? authenticator.Redact(param) : null,
        Code = error.Code is { } code ? authenticator.Redact(code) : null,
    };

    private static async Task<ReadOnlyMemory<byte>> ReadAsync(HttpContent content, int limit, CancellationToken cancellationToken)
    {
        await using var stream = await content.ReadAsStreamAsync(cancellationToken);
        // Sized to the declared length (+1 for the read that sees the end), so the body is read into one array of its
        // own size; a fixed read size made the buffer grow past the body on every response. Without a length (or an
        // implausibly large one) it starts small and doubles.
        var declared = content.Headers.ContentLength is { } length and > 0 and <= 1024 * 1024 ? (int)length : 0;
        var buffer = new ArrayBufferWriter<byte>(declared > 0 ? declared + 1 : 4096);
        while (true)
        {
            var memory = buffer.GetMemory(Math.Max(1, declared - buffer.WrittenCount + 1));
            var read = await stream.ReadAsync(memory, cancellationToken);
            if (read == 0)
            {
                return buffer.WrittenMemory;
            }
            buffer.Advance(read);
            if (buffer.WrittenCount > limit)
            {
                throw new InvalidDataException($"Upstream response larger than {limit} bytes.");
            }
        }
    }

    private static async Task<ReadOnlyMemory<byte>> TryReadAsync(HttpContent content, int limit, CancellationToken cancellationToken)
    {
        try
        {
            return await ReadAsync(content, limit, cancellationToken);
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException or InvalidDataException or OperationCanceledException)
        {
            return ReadOnlyMemory<byte>.Empty;
        }
    }
}
