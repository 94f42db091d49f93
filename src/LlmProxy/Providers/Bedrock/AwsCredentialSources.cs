using Amazon.Runtime;
using Amazon.Runtime.Credentials;

namespace LlmProxy.Providers.Bedrock;

/// <summary>Where a deployment's AWS credentials come from. Implementations cache and refresh as needed; callers ask per request.</summary>
internal interface IAwsCredentialSource
{
    /// <summary>Says where credentials come from, for messages (never a secret).</summary>
    string Description { get; }

    /// <summary>Throws <see cref="AwsCredentialsUnavailableException"/> when no credentials can be obtained.</summary>
    ValueTask<AwsCredentials> GetCredentialsAsync(CancellationToken cancellationToken);
}

/// <summary>No credentials could be obtained. The message says why and holds no secret.</summary>
internal sealed class AwsCredentialsUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Fixed credentials, read from the environment variables a deployment's settings name.</summary>
internal sealed class StaticAwsCredentialSource(AwsCredentials credentials, string description) : IAwsCredentialSource
{
    public string Description { get; } = description;

    public ValueTask<AwsCredentials> GetCredentialsAsync(CancellationToken cancellationToken) => ValueTask.FromResult(credentials);

    /// <summary>
    /// Reads the variables named by <c>AccessKeyIdEnv</c>, <c>SecretAccessKeyEnv</c> and optionally <c>SessionTokenEnv</c>.
    /// Returns null with <paramref name="unavailableReason"/> set when a variable is not set.
    /// </summary>
    public static StaticAwsCredentialSource? FromEnvironment(string accessKeyIdEnv, string secretAccessKeyEnv, string? sessionTokenEnv,
        out string? unavailableReason)
    {
        var missing = new List<string>();
        var accessKeyId = Read(accessKeyIdEnv, missing);
        var secretAccessKey = Read(secretAccessKeyEnv, missing);
        var sessionToken = sessionTokenEnv is null ? null : Read(sessionTokenEnv, missing);
        if (missing.Count > 0)
        {
            unavailableReason = $"environment variable{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing)} {(missing.Count > 1 ? "are" : "is")} not set";
            return null;
        }
        unavailableReason = null;
        return new StaticAwsCredentialSource(new AwsCredentials(accessKeyId!, secretAccessKey!, sessionToken),
            $"environment variables {accessKeyIdEnv}/{secretAccessKeyEnv}");
    }

    private static string? Read(string variable, List<string> missing)
    {
        var value = Environment.GetEnvironmentVariable(variable);
        if (string.IsNullOrWhiteSpace(value))
        {
            missing.Add(variable);
            return null;
        }
        return value.Trim();
    }
}

/// <summary>
/// The AWS SDK's default credential chain: environment variables, the shared profile (<c>AWS_PROFILE</c>),
/// SSO, web identity (EKS / IRSA, through AWSSDK.SecurityToken), ECS container credentials and the EC2
/// instance role. The SDK resolves the chain once and caches the result; refreshing credentials (roles,
/// web identity) renew themselves before they expire.
/// </summary>
internal sealed class DefaultChainAwsCredentialSource : IAwsCredentialSource
{
    /// <summary>One resolver for the process: the chain reads process-wide state (environment, profile files, instance metadata).</summary>
    public static readonly DefaultChainAwsCredentialSource Instance = new();

    private readonly DefaultAWSCredentialsIdentityResolver _resolver = new();

    private DefaultChainAwsCredentialSource()
    {
    }

    public string Description => "the default AWS credential chain";

    public async ValueTask<AwsCredentials> GetCredentialsAsync(CancellationToken cancellationToken)
    {
        try
        {
            var identity = await _resolver.ResolveIdentityAsync(null, cancellationToken).ConfigureAwait(false);
            var credentials = await identity.GetCredentialsAsync().ConfigureAwait(false);
            if (credentials is null || string.IsNullOrEmpty(credentials.AccessKey) || string.IsNullOrEmpty(credentials.SecretKey))
            {
                throw new AwsCredentialsUnavailableException("The default AWS credential chain returned empty credentials.");
            }
            return new AwsCredentials(credentials.AccessKey, credentials.SecretKey, credentials.UseToken ? credentials.Token : null);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception ex) when (ex is not AwsCredentialsUnavailableException)
        {
            // AmazonClientException for "nothing found", AmazonServiceException from STS, HttpRequestException from metadata services...
            throw new AwsCredentialsUnavailableException($"The default AWS credential chain found no usable credentials: {FirstLine(ex.Message)}", ex);
        }
    }

    private static string FirstLine(string text)
    {
        var newline = text.IndexOf('\n');
        return (newline < 0 ? text : text[..newline]).Trim();
    }
}
