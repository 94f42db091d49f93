using LlmProxy.Configuration;
using LlmProxy.Providers;
using LlmProxy.Providers.Bedrock;
using Xunit;

namespace LlmProxy.Tests.Providers.Bedrock;

public class BedrockProviderTests
{
    private static List<string> Validate(DeploymentOptions options)
    {
        var errors = new List<string>();
        BedrockTest.Provider().Validate("LlmProxy:Models:m:Deployments:d", options, errors);
        return errors;
    }

    private static DeploymentOptions Options(string? region = null, string? baseUrl = null, string? model = null, Dictionary<string, string>? settings = null,
        string? apiKeyEnv = null) => new()
        {
            Provider = "bedrock",
            Configuration = BedrockTest.Section(region),
            BaseUrl = baseUrl,
            UpstreamModel = model,
            ApiKeyEnv = apiKeyEnv,
            Settings = new Dictionary<string, string>(settings ?? [], StringComparer.OrdinalIgnoreCase),
        };

    [Fact]
    public void Name_IsBedrock() => Assert.Equal("bedrock", BedrockTest.Provider().Name);

    [Fact]
    public void GenAiProviderName_Bedrock_IsTheSemanticConventionValue() => Assert.Equal("aws.bedrock", ((IChatProvider)BedrockTest.Provider()).GenAiProviderName);

    [Fact]
    public void UpstreamRequestIdHeaders_Bedrock_AreAwsRequestId() =>
        Assert.Equal(["x-amzn-RequestId"], ((IChatProvider)BedrockTest.Provider()).UpstreamRequestIdHeaders);

    [Fact]
    public void Validate_RegionOnly_IsValid() => Assert.Empty(Validate(Options(region: "us-east-1")));

    [Fact]
    public void GetBaseUri_RegionKeyOfTheDeploymentSection_BoundByTheProvider()
    {
        // The README's shape: Region sits beside the common keys of the deployment, and only Bedrock knows it. The gateway
        // hands each deployment its section (DeploymentConfigurationSectionsTests); Bedrock binds Region from there.
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["LlmProxy:Models:claude:Deployments:d:Provider"] = "bedrock",
            ["LlmProxy:Models:claude:Deployments:d:Region"] = "eu-central-1",
            ["LlmProxy:Models:claude:Deployments:d:UpstreamModel"] = "anthropic.claude-v2",
        }).Build();
        var options = new DeploymentOptions { Provider = "bedrock", UpstreamModel = "anthropic.claude-v2" };
        options.Configuration = configuration.GetSection("LlmProxy:Models:claude:Deployments:d");

        Assert.Empty(Validate(options));
        Assert.Equal(new Uri("https://bedrock-runtime.eu-central-1.amazonaws.com"), BedrockTest.Provider().GetBaseUri(options));
    }

    public static TheoryData<string, string?, string?, string> DerivedRegions => new()
    {
        { "from an ARN", null, "arn:aws:bedrock:eu-central-1:123456789012:inference-profile/eu.anthropic.claude-3-haiku-20240307-v1:0", "eu-central-1" },
        { "from the endpoint", "https://bedrock-runtime.ap-southeast-2.amazonaws.com", "anthropic.claude-v2", "ap-southeast-2" },
        { "from a FIPS endpoint", "https://bedrock-runtime-fips.us-gov-west-1.amazonaws.com", null, "us-gov-west-1" },
    };

    [Theory]
    [MemberData(nameof(DerivedRegions))]
    public void ResolveRegion_NoRegionSetting_DerivesIt(string how, string? baseUrl, string? model, string region)
    {
        var options = Options(baseUrl: baseUrl, model: model);

        Assert.True(BedrockSettings.ResolveRegion(options) == region, how);
        Assert.Empty(Validate(options));
    }

    [Fact]
    public void Validate_NoRegionAnywhere_ReportsRegionRequired()
    {
        if (Environment.GetEnvironmentVariable("AWS_REGION") is not null || Environment.GetEnvironmentVariable("AWS_DEFAULT_REGION") is not null)
        {
            Assert.Skip("AWS_REGION is set in this environment, so a region is always derivable.");
        }

        var errors = Validate(Options(baseUrl: "http://127.0.0.1:9000", model: "anthropic.claude-v2"));

        Assert.Contains(errors, e => e.Contains("Region is required for provider 'bedrock'"));
    }

    [Theory]
    [InlineData("US-EAST-1")]
    [InlineData("us-east")]
    [InlineData("../evil")]
    public void Validate_MalformedRegion_IsReported(string region) =>
        Assert.Contains(Validate(Options(region: region)), e => e.Contains("is not an AWS region name"));

    [Fact]
    public void Validate_BaseUrlNotHttp_IsReported() =>
        Assert.Contains(Validate(Options(region: "us-east-1", baseUrl: "ftp://x")), e => e.Contains("BaseUrl must be an absolute http(s) URL"));

    [Fact]
    public void Validate_UnknownSetting_IsReportedToCatchTypos() =>
        Assert.Contains(Validate(Options(region: "us-east-1", settings: new() { ["SecretKeyEnv"] = "X" })),
            e => e.Contains("Settings:SecretKeyEnv is not a setting of provider 'bedrock'"));

    [Fact]
    public void Validate_AccessKeyWithoutSecret_IsReported() =>
        Assert.Contains(Validate(Options(region: "us-east-1", settings: new() { ["AccessKeyIdEnv"] = "MY_AKID" })), e => e.Contains("must be set together"));

    [Fact]
    public void Validate_SessionTokenAlone_IsReported() =>
        Assert.Contains(Validate(Options(region: "us-east-1", settings: new() { ["SessionTokenEnv"] = "MY_TOKEN" })), e => e.Contains("SessionTokenEnv needs"));

    [Fact]
    public void Validate_DropUnsupportedParamsNotBoolean_IsReported() =>
        Assert.Contains(Validate(Options(region: "us-east-1", settings: new() { ["DropUnsupportedParams"] = "yes" })), e => e.Contains("must be true or false"));

    [Fact]
    public void Validate_ApiKeyAndAccessKeys_IsReported() =>
        Assert.Contains(Validate(Options(region: "us-east-1", apiKeyEnv: "BEDROCK_KEY",
            settings: new() { ["AccessKeyIdEnv"] = "A", ["SecretAccessKeyEnv"] = "S" })), e => e.Contains("not both"));

    [Theory]
    [InlineData("us-east-1", null, "https://bedrock-runtime.us-east-1.amazonaws.com/")]
    [InlineData("cn-north-1", null, "https://bedrock-runtime.cn-north-1.amazonaws.com.cn/")]
    [InlineData("us-east-1", "http://127.0.0.1:8091/bedrock", "http://127.0.0.1:8091/bedrock")]
    public void GetBaseUri_RegionOrOverride_GivesEndpoint(string region, string? baseUrl, string expected) =>
        Assert.Equal(expected, BedrockTest.Provider().GetBaseUri(Options(region: region, baseUrl: baseUrl)).AbsoluteUri);

    [Fact]
    public void CreateAuthenticator_NoCredentialSettings_SignsWithDefaultChainAndIsAvailable()
    {
        var authenticator = BedrockTest.Provider().CreateAuthenticator("d", Options(region: "us-east-1"));

        Assert.IsType<SigV4Authenticator>(authenticator);
        Assert.Null(authenticator.UnavailableReason); // chain problems show at request time, not at startup
    }

    [Fact]
    public async Task CreateAuthenticator_CredentialVariablesSet_SignsWithThem()
    {
        var prefix = "LLMPROXY_TEST_" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(prefix + "_AKID", "AKIDFROMENV");
        Environment.SetEnvironmentVariable(prefix + "_SECRET", "secret-from-env");
        Environment.SetEnvironmentVariable(prefix + "_TOKEN", "token-from-env");
        try
        {
            var authenticator = BedrockTest.Provider().CreateAuthenticator("d", Options(region: "eu-west-3", settings: new()
            {
                ["AccessKeyIdEnv"] = prefix + "_AKID",
                ["SecretAccessKeyEnv"] = prefix + "_SECRET",
                ["SessionTokenEnv"] = prefix + "_TOKEN",
            }));
            using var request = new HttpRequestMessage(HttpMethod.Post, "https://bedrock-runtime.eu-west-3.amazonaws.com/model/m/converse");

            await authenticator.AuthenticateAsync(request, "{}"u8.ToArray(), CancellationToken.None);

            Assert.Null(authenticator.UnavailableReason);
            Assert.StartsWith("AWS4-HMAC-SHA256 Credential=AKIDFROMENV/20250102/eu-west-3/bedrock/aws4_request, ",
                request.Headers.GetValues("Authorization").Single());
            Assert.Equal("token-from-env", request.Headers.GetValues("x-amz-security-token").Single());
        }
        finally
        {
            Environment.SetEnvironmentVariable(prefix + "_AKID", null);
            Environment.SetEnvironmentVariable(prefix + "_SECRET", null);
            Environment.SetEnvironmentVariable(prefix + "_TOKEN", null);
        }
    }

    [Fact]
    public async Task CreateAuthenticator_CredentialVariableUnset_DisablesDeploymentNamingTheVariable()
    {
        var variable = "LLMPROXY_TEST_UNSET_" + Guid.NewGuid().ToString("N");

        var authenticator = BedrockTest.Provider().CreateAuthenticator("d", Options(region: "us-east-1", settings: new()
        {
            ["AccessKeyIdEnv"] = variable + "_A",
            ["SecretAccessKeyEnv"] = variable + "_S",
        }));

        Assert.Equal($"environment variables {variable}_A, {variable}_S are not set", authenticator.UnavailableReason);
        using var request = new HttpRequestMessage(HttpMethod.Post, "https://h/model/m/converse");
        await Assert.ThrowsAsync<UpstreamAuthenticationException>(() => authenticator.AuthenticateAsync(request, default, CancellationToken.None).AsTask());
    }

    [Fact]
    public async Task CreateAuthenticator_ApiKeyEnv_SendsBedrockApiKeyAsBearer()
    {
        var variable = "LLMPROXY_TEST_BEDROCK_KEY_" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(variable, "bedrock-api-key-value");
        try
        {
            var authenticator = BedrockTest.Provider().CreateAuthenticator("d", Options(region: "us-east-1", apiKeyEnv: variable));
            using var request = new HttpRequestMessage(HttpMethod.Post, "https://h/model/m/converse");

            await authenticator.AuthenticateAsync(request, default, CancellationToken.None);

            Assert.Equal("Bearer bedrock-api-key-value", request.Headers.Authorization!.ToString());
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }
}
