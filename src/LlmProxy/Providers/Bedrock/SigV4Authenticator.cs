namespace LlmProxy.Providers.Bedrock;

/// <summary>
/// Signs each upstream request with SigV4 just before it is sent, over the final URI and body. Signed
/// headers: <c>content-type</c>, <c>host</c>, <c>x-amz-content-sha256</c>, <c>x-amz-date</c> and, for
/// temporary credentials, <c>x-amz-security-token</c>. A credential source that fails is not asked again
/// for <see cref="FailureBackoff"/>, so a broken credential chain fails requests fast instead of probing
/// metadata endpoints on every request.
/// </summary>
internal sealed partial class SigV4Authenticator : IUpstreamAuthenticator
{
    public static readonly TimeSpan FailureBackoff = TimeSpan.FromSeconds(5);

    private readonly string _deploymentId;
    private readonly IAwsCredentialSource _credentials;
    private readonly string _region;
    private readonly string _service;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _failureLock = new();
    private (DateTimeOffset Until, string Message)? _recentFailure;

    public SigV4Authenticator(string deploymentId, IAwsCredentialSource credentials, string region, string service, TimeProvider time, ILogger logger)
    {
        _deploymentId = deploymentId;
        _credentials = credentials;
        _region = region;
        _service = service;
        _time = time;
        _logger = logger;
    }

    /// <summary>Always null: whether the credential chain works is only known when a request needs credentials.</summary>
    public string? UnavailableReason => null;

    public async ValueTask AuthenticateAsync(HttpRequestMessage request, ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
    {
        var credentials = await GetCredentialsAsync(cancellationToken).ConfigureAwait(false);
        Sign(request, body.Span, credentials, _time.GetUtcNow());
    }

    private async ValueTask<AwsCredentials> GetCredentialsAsync(CancellationToken cancellationToken)
    {
        lock (_failureLock)
        {
            if (_recentFailure is { } failure && _time.GetUtcNow() < failure.Until)
            {
                throw new UpstreamAuthenticationException(failure.Message);
            }
        }
        try
        {
            var credentials = await _credentials.GetCredentialsAsync(cancellationToken).ConfigureAwait(false);
            lock (_failureLock)
            {
                _recentFailure = null;
            }
            return credentials;
        }
        catch (AwsCredentialsUnavailableException ex)
        {
            LogCredentialsUnavailable(_logger, _deploymentId, _credentials.Description, ex.Message);
            var message = $"Deployment '{_deploymentId}' could not obtain AWS credentials from {_credentials.Description}. " +
                "This is a gateway configuration problem, not a problem with your key.";
            lock (_failureLock)
            {
                _recentFailure = (_time.GetUtcNow() + FailureBackoff, message);
            }
            throw new UpstreamAuthenticationException(message, ex);
        }
    }

    /// <summary>Adds the SigV4 headers to <paramref name="request"/>, whose URI and content are final.</summary>
    internal SigV4Signature Sign(HttpRequestMessage request, ReadOnlySpan<byte> body, AwsCredentials credentials, DateTimeOffset now)
    {
        var uri = request.RequestUri ?? throw new InvalidOperationException("The request has no URI.");
        var host = uri.IsDefaultPort ? uri.IdnHost : $"{uri.IdnHost}:{uri.Port}";
        var amzDate = SigV4Signer.FormatAmzDate(now);
        var payloadHash = SigV4Signer.HexSha256(body);

        var headers = request.Headers;
        headers.Remove("Authorization");
        headers.Remove("x-amz-date");
        headers.Remove("x-amz-content-sha256");
        headers.Remove("x-amz-security-token");
        // Send exactly the host that was signed.
        headers.Host = host;
        headers.TryAddWithoutValidation("x-amz-date", amzDate);
        headers.TryAddWithoutValidation("x-amz-content-sha256", payloadHash);

        var signed = new List<KeyValuePair<string, string>>(5)
        {
            new("host", host),
            new("x-amz-date", amzDate),
            new("x-amz-content-sha256", payloadHash),
        };
        if (credentials.SessionToken is { } token)
        {
            headers.TryAddWithoutValidation("x-amz-security-token", token);
            signed.Add(new("x-amz-security-token", token));
        }
        if (request.Content?.Headers.ContentType is { } contentType)
        {
            signed.Add(new("content-type", contentType.ToString()));
        }

        var signature = SigV4Signer.Sign(request.Method.Method, SigV4Signer.CanonicalUri(uri.AbsolutePath), SigV4Signer.CanonicalQuery(uri.Query),
            signed, payloadHash, credentials, _region, _service, now);
        headers.TryAddWithoutValidation("Authorization", signature.Authorization);
        return signature;
    }

    [LoggerMessage(EventId = 3101, Level = LogLevel.Warning,
        Message = "Deployment {DeploymentId} could not obtain AWS credentials from {Source}: {Reason}")]
    private static partial void LogCredentialsUnavailable(ILogger logger, string deploymentId, string source, string reason);
}
