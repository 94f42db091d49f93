using System.Net;
using System.Text;
using System.Text.Json;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Simulator;

namespace LlmProxy.IntegrationTests.Providers;

/// <summary>
/// A Bedrock deployment with no credentials in its configuration uses AWSSDK.Core's default credential chain. The chain
/// reads process-wide state once, so each case runs the gateway as its own process with only the AWS environment under
/// test, against the simulator's Bedrock, which verifies every SigV4 signature with the secret it knows for the key id.
/// </summary>
public sealed class BedrockCredentialChainTests : IAsyncLifetime
{
    private const string TenantKey = "sk-tenant-chain-0123456789";
    private const string EnvironmentKeyId = "AKIDFROMENVIRONMENT1";
    private const string EnvironmentSecret = "secret-from-the-environment";
    private const string ProfileKeyId = "AKIDFROMPROFILEFILE1";
    private const string ProfileSecret = "secret-from-the-profile-file";
    private const string RoleArn = "arn:aws:iam::123456789012:role/llmproxy-bedrock";
    private const string WebIdentityToken = "eyJhbGciOiJSUzI1NiJ9.fake-service-account-token.signature";

    private readonly DirectoryInfo _directory = Directory.CreateTempSubdirectory("llmproxy-aws-chain-");
    private SimulatorServer _bedrock = null!;

    public async ValueTask InitializeAsync()
    {
        var options = new SimulatorOptions();
        options.BedrockCredentials.Clear();
        options.BedrockCredentials[EnvironmentKeyId] = EnvironmentSecret;
        options.BedrockCredentials[ProfileKeyId] = ProfileSecret;
        options.BedrockCredentials[FakeStsServer.AccessKeyId] = FakeStsServer.SecretAccessKey;
        _bedrock = await SimulatorServer.StartAsync(options);
    }

    public async ValueTask DisposeAsync()
    {
        await _bedrock.DisposeAsync();
        _directory.Delete(recursive: true);
    }

    /// <summary>One Bedrock deployment without any credential setting: the default chain supplies them.</summary>
    private GatewaySettings Settings() => new GatewaySettings()
        .Tenant("acme", TenantKey)
        .Deployment("claude", "bedrock-chain", "bedrock", _bedrock.BaseAddress.ToString(), upstreamModel: "anthropic.claude-3-haiku-20240307-v1:0",
            configure: d => d.Set("Region", "us-east-1"));

    /// <summary>
    /// The gateway as its own process with exactly the AWS environment the test sets up, and nothing of the machine's:
    /// no inherited <c>AWS_*</c> variables, a private <c>HOME</c> so no <c>~/.aws</c>, no instance metadata service.
    /// </summary>
    private Task<GatewayProcess> StartGatewayAsync(IReadOnlyDictionary<string, string> aws) =>
        GatewayProcess.StartAsync(_directory.FullName, IsolatedEnvironment(_directory, Settings(), aws), withoutInheritedAwsOrLlmProxyVariables: true);

    /// <param name="directory">A private directory: <c>HOME</c> and usage ledger.</param>
    /// <param name="settings">The gateway configuration, passed as <c>LlmProxy__...</c> environment variables the way a container gets it.</param>
    /// <param name="aws">The AWS variables under test, set last.</param>
    private static Dictionary<string, string?> IsolatedEnvironment(DirectoryInfo directory, GatewaySettings settings, IReadOnlyDictionary<string, string> aws)
    {
        var environment = new Dictionary<string, string?>
        {
            ["HOME"] = directory.FullName,
            // No profile files unless a test writes one, and never a wait on an instance metadata service that is not there.
            ["AWS_CONFIG_FILE"] = Path.Combine(directory.FullName, "no-aws-config"),
            ["AWS_SHARED_CREDENTIALS_FILE"] = Path.Combine(directory.FullName, "no-aws-credentials"),
            ["AWS_EC2_METADATA_DISABLED"] = "true",
            ["LlmProxy__Metering__DataDirectory"] = Path.Combine(directory.FullName, "data"),
        };
        foreach (var (key, value) in settings.Values)
        {
            environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        }
        foreach (var (name, value) in aws)
        {
            environment[name] = value;
        }
        return environment;
    }

    [Fact]
    public async Task EnvironmentVariables_SignWithThoseKeys()
    {
        await using var gateway = await StartGatewayAsync(new Dictionary<string, string>
        {
            ["AWS_ACCESS_KEY_ID"] = EnvironmentKeyId,
            ["AWS_SECRET_ACCESS_KEY"] = EnvironmentSecret,
        });

        using var response = await PostChatAsync(gateway);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith($"AWS4-HMAC-SHA256 Credential={EnvironmentKeyId}/", _bedrock.Requests.Last!.Header("Authorization"));
        Assert.Null(_bedrock.Requests.Last!.Header("x-amz-security-token"));
    }

    [Fact]
    public async Task EnvironmentVariables_WrongSecret_502NamingACredentialProblem_WithoutTheSecret()
    {
        const string wrongSecret = "not-the-environment-secret";
        await using var gateway = await StartGatewayAsync(new Dictionary<string, string>
        {
            ["AWS_ACCESS_KEY_ID"] = EnvironmentKeyId,
            ["AWS_SECRET_ACCESS_KEY"] = wrongSecret,
        });

        using var response = await PostChatAsync(gateway);
        var body = await response.Content.ReadAsStringAsync();
        var error = JsonDocument.Parse(body).RootElement.GetProperty("error");

        // The simulator answered 403 InvalidSignatureException; the client learns it is the gateway's credentials, not its key.
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("upstream_authentication_failed", error.GetProperty("code").GetString());
        Assert.Contains("bedrock-chain", error.GetProperty("message").GetString());
        Assert.DoesNotContain(wrongSecret, body);
        Assert.DoesNotContain(EnvironmentKeyId, body);
        Assert.DoesNotContain(wrongSecret, gateway.Output);
    }

    [Fact]
    public async Task SharedCredentialsFile_NamedProfile_SignsWithThatProfile()
    {
        var credentialsFile = Path.Combine(_directory.FullName, "credentials");
        // The default profile holds keys the simulator rejects: only AWS_PROFILE can make the request succeed.
        await File.WriteAllTextAsync(credentialsFile, $"""
            [default]
            aws_access_key_id = AKIDDEFAULTPROFILE01
            aws_secret_access_key = not-accepted-anywhere

            [bedrock-gateway]
            aws_access_key_id = {ProfileKeyId}
            aws_secret_access_key = {ProfileSecret}
            """);
        await using var gateway = await StartGatewayAsync(new Dictionary<string, string>
        {
            ["AWS_SHARED_CREDENTIALS_FILE"] = credentialsFile,
            ["AWS_PROFILE"] = "bedrock-gateway",
        });

        using var response = await PostChatAsync(gateway);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith($"AWS4-HMAC-SHA256 Credential={ProfileKeyId}/", _bedrock.Requests.Last!.Header("Authorization"));
    }

    [Fact]
    public async Task WebIdentity_AssumesTheRoleAtSts_SignsWithTemporaryCredentialsAndSessionToken()
    {
        using var sts = FakeStsServer.Start(WebIdentityToken, RoleArn);
        var tokenFile = Path.Combine(_directory.FullName, "web-identity-token");
        await File.WriteAllTextAsync(tokenFile, WebIdentityToken + "\n");
        await using var gateway = await StartGatewayAsync(new Dictionary<string, string>
        {
            ["AWS_WEB_IDENTITY_TOKEN_FILE"] = tokenFile,
            ["AWS_ROLE_ARN"] = RoleArn,
            ["AWS_ROLE_SESSION_NAME"] = "llmproxy-test",
            ["AWS_REGION"] = "us-east-1",
            // AWSSDK.Core 4 honours the service-specific endpoint variable for the STS client it creates for the chain.
            ["AWS_ENDPOINT_URL_STS"] = sts.BaseAddress.ToString(),
        });

        using var first = await PostChatAsync(gateway);
        using var second = await PostChatAsync(gateway);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        var call = Assert.Single(sts.Calls); // the temporary credentials are cached, not fetched per request
        Assert.Equal("AssumeRoleWithWebIdentity", call["Action"]);
        Assert.Equal(RoleArn, call["RoleArn"]);
        Assert.Equal("llmproxy-test", call["RoleSessionName"]);
        var signed = _bedrock.Requests.Last!;
        Assert.StartsWith($"AWS4-HMAC-SHA256 Credential={FakeStsServer.AccessKeyId}/", signed.Header("Authorization"));
        Assert.Equal(FakeStsServer.SessionToken, signed.Header("x-amz-security-token"));
        Assert.Contains("x-amz-security-token", signed.Header("Authorization")); // among the signed headers
    }

    [Fact]
    public async Task WebIdentity_StsRejectsTheToken_502NamingACredentialProblem()
    {
        using var sts = FakeStsServer.Start("some-other-token", RoleArn);
        var tokenFile = Path.Combine(_directory.FullName, "web-identity-token");
        await File.WriteAllTextAsync(tokenFile, WebIdentityToken);
        await using var gateway = await StartGatewayAsync(new Dictionary<string, string>
        {
            ["AWS_WEB_IDENTITY_TOKEN_FILE"] = tokenFile,
            ["AWS_ROLE_ARN"] = RoleArn,
            ["AWS_REGION"] = "us-east-1",
            ["AWS_ENDPOINT_URL_STS"] = sts.BaseAddress.ToString(),
        });

        using var response = await PostChatAsync(gateway);
        var body = await response.Content.ReadAsStringAsync();
        var error = JsonDocument.Parse(body).RootElement.GetProperty("error");

        // No request reached Bedrock: the gateway could not get credentials, says so, and logs why (event 3101).
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("upstream_authentication_failed", error.GetProperty("code").GetString());
        Assert.Contains("could not obtain AWS credentials", error.GetProperty("message").GetString());
        Assert.DoesNotContain(WebIdentityToken, body);
        Assert.Equal(0, _bedrock.Requests.Count);
        Assert.NotEmpty(sts.Calls);
        Assert.DoesNotContain(WebIdentityToken, gateway.Output);
    }

    private static async Task<HttpResponseMessage> PostChatAsync(GatewayProcess gateway)
    {
        using var http = gateway.CreateClient(TenantKey);
        return await http.PostAsync("/v1/chat/completions",
            new StringContent("""{"model":"claude","messages":[{"role":"user","content":"Hello there"}]}""", Encoding.UTF8, "application/json"));
    }
}
