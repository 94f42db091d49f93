using System.Text.RegularExpressions;
using LlmProxy.Configuration;

namespace LlmProxy.Providers.Bedrock;

/// <summary>
/// The <c>Settings</c> keys a <c>bedrock</c> deployment understands, and how its region and endpoint are
/// worked out. Secrets are never in configuration: the credential settings name environment variables.
/// </summary>
internal static partial class BedrockSettings
{
    /// <summary>Name of the environment variable holding the access key id. Set together with <see cref="SecretAccessKeyEnv"/>.</summary>
    public const string AccessKeyIdEnv = nameof(AccessKeyIdEnv);

    /// <summary>Name of the environment variable holding the secret access key.</summary>
    public const string SecretAccessKeyEnv = nameof(SecretAccessKeyEnv);

    /// <summary>Name of the environment variable holding a session token (temporary credentials). Optional.</summary>
    public const string SessionTokenEnv = nameof(SessionTokenEnv);

    /// <summary>"true": parameters Bedrock cannot honour are left out instead of rejected with a 400. The default is false.</summary>
    public const string DropUnsupportedParams = nameof(DropUnsupportedParams);

    public static readonly IReadOnlyList<string> Known = [AccessKeyIdEnv, SecretAccessKeyEnv, SessionTokenEnv, DropUnsupportedParams];

    /// <summary>
    /// The deployment's region: <c>Region</c>; else the region of an ARN in <c>UpstreamModel</c>; else the
    /// region in a <c>bedrock-runtime.{region}.amazonaws.com</c> <c>BaseUrl</c>; else <c>AWS_REGION</c> /
    /// <c>AWS_DEFAULT_REGION</c>. Null when none of them gives one.
    /// </summary>
    public static string? ResolveRegion(DeploymentOptions options)
    {
        if (BedrockDeploymentOptions.Of(options).Region is { } configured && !string.IsNullOrWhiteSpace(configured))
        {
            return configured.Trim();
        }
        if (options.UpstreamModel is { } model && ArnRegion().Match(model) is { Success: true } arn)
        {
            return arn.Groups["region"].Value;
        }
        if (Uri.TryCreate(options.BaseUrl, UriKind.Absolute, out var baseUri) && EndpointRegion().Match(baseUri.Host) is { Success: true } host)
        {
            return host.Groups["region"].Value;
        }
        var fromEnvironment = Environment.GetEnvironmentVariable("AWS_REGION") ?? Environment.GetEnvironmentVariable("AWS_DEFAULT_REGION");
        return string.IsNullOrWhiteSpace(fromEnvironment) ? null : fromEnvironment.Trim();
    }

    public static bool IsValidRegion(string region) => RegionName().IsMatch(region);

    /// <summary>The public Bedrock Runtime endpoint of a region (China regions live under amazonaws.com.cn).</summary>
    public static Uri DefaultEndpoint(string region) =>
        new($"https://bedrock-runtime.{region}.{(region.StartsWith("cn-", StringComparison.Ordinal) ? "amazonaws.com.cn" : "amazonaws.com")}", UriKind.Absolute);

    public static bool GetDropUnsupportedParams(DeploymentOptions options) =>
        options.Settings.TryGetValue(DropUnsupportedParams, out var value) && bool.TryParse(value, out var drop) && drop;

    public static string? Get(DeploymentOptions options, string key) =>
        options.Settings.TryGetValue(key, out var value) && !string.IsNullOrWhiteSpace(value) ? value.Trim() : null;

    [GeneratedRegex("^[a-z]{2}(-[a-z]+)+-[0-9]+$")]
    private static partial Regex RegionName();

    [GeneratedRegex("^arn:aws[a-z-]*:bedrock:(?<region>[a-z]{2}(-[a-z]+)+-[0-9]+):")]
    private static partial Regex ArnRegion();

    [GeneratedRegex(@"^bedrock-runtime(-fips)?\.(?<region>[a-z]{2}(-[a-z]+)+-[0-9]+)\.amazonaws\.com(\.cn)?$", RegexOptions.IgnoreCase)]
    private static partial Regex EndpointRegion();
}

/// <summary>
/// The keys of a <c>bedrock</c> deployment's section that only Bedrock has, bound from the deployment's own configuration
/// section next to the common ones (<c>LlmProxy:Models:{model}:Deployments:{id}:Region</c>).
/// </summary>
internal sealed class BedrockDeploymentOptions
{
    /// <summary>AWS region of the endpoint and of the SigV4 signature. No default: worked out as <see cref="BedrockSettings.ResolveRegion"/> says.</summary>
    public string? Region { get; set; }

    public static BedrockDeploymentOptions Of(DeploymentOptions options) => options.Configuration?.Get<BedrockDeploymentOptions>() ?? new();
}
