using LlmProxy.Configuration;
using LlmProxy.OpenAi;
using LlmProxy.Routing;

namespace LlmProxy.Providers.Bedrock;

/// <summary>
/// Amazon Bedrock through the Bedrock Runtime Converse API, called directly over HTTPS and signed with
/// SigV4 (service <c>bedrock</c>). See README.md in this folder for the settings and the parameter mapping.
/// </summary>
internal sealed class BedrockProvider : IChatProvider
{
    public const string ProviderName = "bedrock";

    /// <summary>The SigV4 signing name of Bedrock (the endpoint prefix is <c>bedrock-runtime</c>, the signing name is not).</summary>
    public const string SigningService = "bedrock";

    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly IAwsCredentialSource _defaultCredentials;

    public BedrockProvider(TimeProvider time, ILoggerFactory loggerFactory)
        : this(time, loggerFactory, DefaultChainAwsCredentialSource.Instance)
    {
    }

    /// <param name="defaultCredentials">Credentials of deployments without credential settings (tests replace the AWS default chain).</param>
    internal BedrockProvider(TimeProvider time, ILoggerFactory loggerFactory, IAwsCredentialSource defaultCredentials)
    {
        _time = time;
        _logger = loggerFactory.CreateLogger<BedrockProvider>();
        _defaultCredentials = defaultCredentials;
    }

    /// <summary>AWS names the request id of every answer, errors included, in <c>x-amzn-RequestId</c>.</summary>
    private static readonly string[] RequestIdHeaders = ["x-amzn-RequestId"];

    public string Name => ProviderName;

    /// <summary>The OpenTelemetry GenAI well-known value for Bedrock.</summary>
    public string GenAiProviderName => "aws.bedrock";

    public IReadOnlyList<string> UpstreamRequestIdHeaders => RequestIdHeaders;

    /// <summary>Bedrock throttles and fails in bursts; take a deployment out sooner than an OpenAI one (the original design: 3).</summary>
    public int DefaultConsecutiveFailures => 3;

    public void Validate(string path, DeploymentOptions options, ICollection<string> errors)
    {
        var region = BedrockSettings.ResolveRegion(options);
        if (region is null)
        {
            errors.Add($"{path}:Region is required for provider 'bedrock' (e.g. us-east-1), unless UpstreamModel is an ARN, BaseUrl is a " +
                "bedrock-runtime.{region}.amazonaws.com URL, or AWS_REGION is set.");
        }
        else if (!BedrockSettings.IsValidRegion(region))
        {
            errors.Add($"{path}:Region '{region}' is not an AWS region name (e.g. us-east-1).");
        }

        if (!string.IsNullOrWhiteSpace(options.BaseUrl)
            && !(Uri.TryCreate(options.BaseUrl, UriKind.Absolute, out var baseUri) && (baseUri.Scheme == Uri.UriSchemeHttps || baseUri.Scheme == Uri.UriSchemeHttp)))
        {
            errors.Add($"{path}:BaseUrl must be an absolute http(s) URL (it overrides https://bedrock-runtime.{{region}}.amazonaws.com).");
        }

        foreach (var key in options.Settings.Keys)
        {
            if (!BedrockSettings.Known.Contains(key, StringComparer.OrdinalIgnoreCase))
            {
                errors.Add($"{path}:Settings:{key} is not a setting of provider 'bedrock'; known settings: {string.Join(", ", BedrockSettings.Known)}.");
            }
        }
        var accessKeyEnv = BedrockSettings.Get(options, BedrockSettings.AccessKeyIdEnv);
        var secretKeyEnv = BedrockSettings.Get(options, BedrockSettings.SecretAccessKeyEnv);
        var sessionTokenEnv = BedrockSettings.Get(options, BedrockSettings.SessionTokenEnv);
        if ((accessKeyEnv is null) != (secretKeyEnv is null))
        {
            errors.Add($"{path}:Settings:{BedrockSettings.AccessKeyIdEnv} and {path}:Settings:{BedrockSettings.SecretAccessKeyEnv} must be set together " +
                "(names of environment variables; leave both out to use the default AWS credential chain).");
        }
        if (sessionTokenEnv is not null && accessKeyEnv is null)
        {
            errors.Add($"{path}:Settings:{BedrockSettings.SessionTokenEnv} needs {BedrockSettings.AccessKeyIdEnv} and {BedrockSettings.SecretAccessKeyEnv}.");
        }
        if (!string.IsNullOrWhiteSpace(options.ApiKeyEnv) && accessKeyEnv is not null)
        {
            errors.Add($"{path}: set either ApiKeyEnv (a Bedrock API key) or Settings:{BedrockSettings.AccessKeyIdEnv}/{BedrockSettings.SecretAccessKeyEnv}, not both.");
        }
        if (options.Settings.TryGetValue(BedrockSettings.DropUnsupportedParams, out var drop) && !bool.TryParse(drop, out _))
        {
            errors.Add($"{path}:Settings:{BedrockSettings.DropUnsupportedParams} must be true or false.");
        }
    }

    public Uri GetBaseUri(DeploymentOptions options) =>
        string.IsNullOrWhiteSpace(options.BaseUrl)
            ? BedrockSettings.DefaultEndpoint(BedrockSettings.ResolveRegion(options)!)
            : new Uri(options.BaseUrl, UriKind.Absolute);

    public IUpstreamAuthenticator CreateAuthenticator(string deploymentId, DeploymentOptions options)
    {
        if (!string.IsNullOrWhiteSpace(options.ApiKeyEnv))
        {
            // A Bedrock API key is sent as a bearer token instead of a SigV4 signature.
            return BearerTokenAuthenticator.FromEnvironment(options.ApiKeyEnv);
        }
        var region = BedrockSettings.ResolveRegion(options)!;
        var credentials = _defaultCredentials;
        if (BedrockSettings.Get(options, BedrockSettings.AccessKeyIdEnv) is { } accessKeyEnv
            && BedrockSettings.Get(options, BedrockSettings.SecretAccessKeyEnv) is { } secretKeyEnv)
        {
            var source = StaticAwsCredentialSource.FromEnvironment(accessKeyEnv, secretKeyEnv,
                BedrockSettings.Get(options, BedrockSettings.SessionTokenEnv), out var unavailableReason);
            if (source is null)
            {
                return new UnavailableAuthenticator(unavailableReason!);
            }
            credentials = source;
        }
        return new SigV4Authenticator(deploymentId, credentials, region, SigningService, _time, _logger);
    }

    public IChatTranslator CreateTranslator(ChatRequest request, Deployment deployment) => new OpenAiBedrockTranslator(request, deployment, _time);

    /// <summary>A deployment whose configured credentials are missing: disabled at startup, with the reason.</summary>
    private sealed class UnavailableAuthenticator(string reason) : IUpstreamAuthenticator
    {
        public string? UnavailableReason { get; } = reason;

        public ValueTask AuthenticateAsync(HttpRequestMessage request, ReadOnlyMemory<byte> body, CancellationToken cancellationToken) =>
            throw new UpstreamAuthenticationException($"AWS credentials are not available: {UnavailableReason}.");
    }
}
