using System.Runtime.InteropServices;
using Amazon;
using Amazon.Runtime;
using Amazon.Runtime.Signing;

namespace LlmProxy.Providers.Bedrock;

/// <summary>AWS credentials for one signature. The session token is set for temporary credentials.</summary>
internal sealed record AwsCredentials(string AccessKeyId, string SecretAccessKey, string? SessionToken = null)
{
    // Never print the secret or the token (records print every member by default).
    public override string ToString() => $"AwsCredentials {{ AccessKeyId = {AccessKeyId}, SessionToken = {(SessionToken is null ? "none" : "set")} }}";
}

/// <summary>
/// Signs each upstream request with SigV4 (AWSSDK.Core's <see cref="AWSSigV4Signer"/>) just before it is sent, over the
/// final URI and body. Signed headers: <c>content-type</c>, <c>host</c>, <c>x-amz-content-sha256</c>, <c>x-amz-date</c>
/// and, for temporary credentials, <c>x-amz-security-token</c>. A credential source that fails is not asked again
/// for <see cref="FailureBackoff"/>, so a broken credential chain fails requests fast instead of probing
/// metadata endpoints on every request.
/// </summary>
internal sealed partial class SigV4Authenticator : IUpstreamAuthenticator
{
    public static readonly TimeSpan FailureBackoff = TimeSpan.FromSeconds(5);

    private readonly string _deploymentId;
    private readonly IAwsCredentialSource _credentials;
    private readonly RegionEndpoint _region;
    private readonly string _service;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _failureLock = new();
    private (DateTimeOffset Until, string Message)? _recentFailure;

    public SigV4Authenticator(string deploymentId, IAwsCredentialSource credentials, string region, string service, TimeProvider time, ILogger logger)
    {
        _deploymentId = deploymentId;
        _credentials = credentials;
        _region = RegionEndpoint.GetBySystemName(region);
        _service = service;
        _time = time;
        _logger = logger;
    }

    /// <summary>Always null: whether the credential chain works is only known when a request needs credentials.</summary>
    public string? UnavailableReason => null;

    public async ValueTask AuthenticateAsync(HttpRequestMessage request, ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
    {
        var credentials = await GetCredentialsAsync(cancellationToken).ConfigureAwait(false);
        Sign(request, body, credentials, _time.GetUtcNow());
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

    /// <summary>Adds the SigV4 headers to <paramref name="request"/>, whose URI and content are final; returns the Authorization value.</summary>
    internal string Sign(HttpRequestMessage request, ReadOnlyMemory<byte> body, AwsCredentials credentials, DateTimeOffset now)
    {
        var uri = request.RequestUri ?? throw new InvalidOperationException("The request has no URI.");
        var signing = new AWSSigningRequest
        {
            HttpMethod = request.Method,
            RequestUri = uri,
            // Translators serialize into an array of the body's size: hashed where it is, not copied.
            Content = MemoryMarshal.TryGetArray(body, out var segment) && segment.Offset == 0 && segment.Count == segment.Array!.Length
                ? segment.Array
                : body.ToArray(),
        };
        if (request.Content?.Headers.ContentType is { } contentType)
        {
            signing.Headers["content-type"] = contentType.ToString();
        }
        var signed = AWSSigV4Signer.Sign(signing, new AWSSigV4Parameters
        {
            Credentials = credentials.SessionToken is { } token
                ? new SessionAWSCredentials(credentials.AccessKeyId, credentials.SecretAccessKey, token)
                : new BasicAWSCredentials(credentials.AccessKeyId, credentials.SecretAccessKey),
            Region = _region,
            Service = _service,
            SignPayload = true,
            SignedAt = now.UtcDateTime,
        });

        var headers = request.Headers;
        headers.Remove("Authorization");
        headers.Remove("x-amz-date");
        headers.Remove("x-amz-content-sha256");
        headers.Remove("x-amz-security-token");
        // Send exactly the host that was signed (with the port when it is not the scheme's default).
        headers.Host = uri.IsDefaultPort ? uri.IdnHost : $"{uri.IdnHost}:{uri.Port}";
        foreach (var (name, value) in signed.Headers)
        {
            headers.TryAddWithoutValidation(name, value);
        }
        return headers.GetValues("Authorization").Single();
    }

    [LoggerMessage(EventId = 3101, Level = LogLevel.Warning,
        Message = "Deployment {DeploymentId} could not obtain AWS credentials from {Source}: {Reason}")]
    private static partial void LogCredentialsUnavailable(ILogger logger, string deploymentId, string source, string reason);
}
