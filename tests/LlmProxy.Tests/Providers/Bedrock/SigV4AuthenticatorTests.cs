using Xunit;
using System.Net.Http.Headers;
using System.Text;
using LlmProxy.Providers;
using LlmProxy.Providers.Bedrock;
using LlmProxy.Simulator.Bedrock;
using Microsoft.Extensions.Logging.Abstractions;

namespace LlmProxy.Tests.Providers.Bedrock;

/// <summary>
/// Signing of upstream requests (AWSSDK.Core's signer behind <see cref="SigV4Authenticator"/>) against signatures computed
/// independently with AWS's JavaScript signer, and the authenticator's handling of headers, clock and failing credentials.
/// </summary>
public class SigV4AuthenticatorTests
{
    private static readonly AwsCredentials Example = new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    private static readonly DateTimeOffset VectorTime = new(2015, 8, 30, 12, 36, 0, TimeSpan.Zero);

    // Reference signatures for a Bedrock Converse request to an inference profile ARN, computed independently
    // with AWS's JavaScript signer (npm @smithy/signature-v4, the signer of the AWS SDK for JavaScript v3).
    private const string ArnModel = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0";
    private const string ConverseBody = """{"messages":[{"role":"user","content":[{"text":"Hello"}]}]}""";

    [Theory]
    [InlineData(null, "content-type;host;x-amz-content-sha256;x-amz-date", "ff020b65d3cc2e55377ee6f0d1efba737037c9fbe5b2e987c7fc28cff2434a30")]
    [InlineData("FQoGZXIvYXdzEXAMPLETOKEN", "content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token",
        "d6c2cad7b0aadd0fd6be41578b69c5a3694a6d7bb07439a6fdc1117350ce952d")]
    public void Sign_BedrockRequestToInferenceProfileArn_MatchesAwsJavaScriptSigner(string? token, string signedHeaders, string expectedSignature)
    {
        var request = BedrockRequest($"https://bedrock-runtime.us-east-1.amazonaws.com/model/{Uri.EscapeDataString(ArnModel)}/converse");

        var authorization = Authenticator(new FakeTimeProvider(VectorTime)).Sign(request, Encoding.UTF8.GetBytes(ConverseBody),
            Example with { SessionToken = token }, VectorTime);

        Assert.Equal(
            $"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, SignedHeaders={signedHeaders}, Signature={expectedSignature}",
            authorization);
        // What goes on the wire is the single-encoded path, and the headers that were signed.
        Assert.Equal("/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
            request.RequestUri!.PathAndQuery);
        Assert.Equal("bedrock-runtime.us-east-1.amazonaws.com", request.Headers.Host);
        Assert.Equal("20150830T123600Z", request.Headers.GetValues("x-amz-date").Single());
        Assert.Equal("7421da8d1a0949a481724fee62d5886aacde03836bf58248adb73e8b61ac0d54", request.Headers.GetValues("x-amz-content-sha256").Single());
        Assert.Equal(token is not null, request.Headers.Contains("x-amz-security-token"));
        Assert.Equal(authorization, request.Headers.GetValues("Authorization").Single());
    }

    [Fact]
    public void Sign_NonDefaultPort_SendsTheHostWithPortThatTheVerifierChecks()
    {
        var request = BedrockRequest("http://127.0.0.1:8091/bedrock/model/m/converse");

        Authenticator(new FakeTimeProvider(VectorTime)).Sign(request, "{}"u8.ToArray(), Example, VectorTime);

        Assert.Equal("127.0.0.1:8091", request.Headers.Host);
        // The simulator's verifier (written apart from the signer) rebuilds the signature from the host with its port.
        var verifier = new SigV4Verifier(new Dictionary<string, string> { [Example.AccessKeyId] = Example.SecretAccessKey }, "bedrock",
            new FakeTimeProvider(VectorTime));
        var headers = request.Headers.Concat(request.Content!.Headers)
            .SelectMany(h => h.Value.Select(v => new KeyValuePair<string, string>(h.Key, v))).ToList();
        Assert.Null(verifier.Verify(new SigV4Request("POST", "/bedrock/model/m/converse", "", headers, "{}"u8.ToArray())));
    }

    [Fact]
    public void Sign_SignedTwice_ReplacesEarlierSignatureHeaders()
    {
        var request = BedrockRequest("https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse");
        var authenticator = Authenticator(new FakeTimeProvider(VectorTime));

        authenticator.Sign(request, "{}"u8.ToArray(), Example with { SessionToken = "t" }, VectorTime);
        var second = authenticator.Sign(request, "{}"u8.ToArray(), Example, VectorTime.AddMinutes(1));

        Assert.Equal(second, request.Headers.GetValues("Authorization").Single());
        Assert.Equal("20150830T123700Z", request.Headers.GetValues("x-amz-date").Single());
        Assert.False(request.Headers.Contains("x-amz-security-token"));
    }

    [Fact]
    public async Task AuthenticateAsync_CredentialsAvailable_SignsWithInjectedClock()
    {
        var time = new FakeTimeProvider(VectorTime);
        var request = BedrockRequest($"https://bedrock-runtime.us-east-1.amazonaws.com/model/{Uri.EscapeDataString(ArnModel)}/converse");

        await Authenticator(time).AuthenticateAsync(request, Encoding.UTF8.GetBytes(ConverseBody), CancellationToken.None);

        Assert.EndsWith("Signature=ff020b65d3cc2e55377ee6f0d1efba737037c9fbe5b2e987c7fc28cff2434a30", request.Headers.GetValues("Authorization").Single());
    }

    [Fact]
    public async Task AuthenticateAsync_SourceFails_ThrowsGatewayCredentialErrorThenFailsFastUntilBackoffEnds()
    {
        var time = new FakeTimeProvider(VectorTime);
        var source = new FailingSource();
        var authenticator = new SigV4Authenticator("bedrock-east", source, "us-east-1", "bedrock", time, NullLogger.Instance);

        var first = await Assert.ThrowsAsync<UpstreamAuthenticationException>(() =>
            authenticator.AuthenticateAsync(BedrockRequest("https://h/model/m/converse"), "{}"u8.ToArray(), CancellationToken.None).AsTask());
        Assert.Contains("Deployment 'bedrock-east' could not obtain AWS credentials from a test source", first.Message);
        Assert.Contains("gateway configuration problem", first.Message);
        Assert.DoesNotContain("secret-detail", first.Message);
        Assert.Equal(1, source.Calls);

        time.Advance(SigV4Authenticator.FailureBackoff - TimeSpan.FromSeconds(1));
        await Assert.ThrowsAsync<UpstreamAuthenticationException>(() =>
            authenticator.AuthenticateAsync(BedrockRequest("https://h/model/m/converse"), "{}"u8.ToArray(), CancellationToken.None).AsTask());
        Assert.Equal(1, source.Calls); // not probed again during the backoff

        time.Advance(TimeSpan.FromSeconds(2));
        source.Fail = false;
        var request = BedrockRequest("https://h/model/m/converse");
        await authenticator.AuthenticateAsync(request, "{}"u8.ToArray(), CancellationToken.None);
        Assert.Equal(2, source.Calls);
        Assert.True(request.Headers.Contains("Authorization"));
    }

    [Fact]
    public void ToString_Credentials_NeverShowsSecretOrToken()
    {
        var text = (Example with { SessionToken = "token-value" }).ToString();

        Assert.Contains("AKIDEXAMPLE", text);
        Assert.DoesNotContain("wJalrXUtnFEMI", text);
        Assert.DoesNotContain("token-value", text);
    }

    private static SigV4Authenticator Authenticator(TimeProvider time) =>
        new("test", new StaticAwsCredentialSource(Example, "test credentials"), "us-east-1", "bedrock", time, NullLogger.Instance);

    private static HttpRequestMessage BedrockRequest(string uri)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(uri, UriKind.Absolute))
        {
            Content = new ReadOnlyMemoryContent(Encoding.UTF8.GetBytes(ConverseBody)),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return request;
    }

    private sealed class FailingSource : IAwsCredentialSource
    {
        public bool Fail { get; set; } = true;
        public int Calls { get; private set; }
        public string Description => "a test source";

        public ValueTask<AwsCredentials> GetCredentialsAsync(CancellationToken cancellationToken)
        {
            Calls++;
            return Fail
                ? throw new AwsCredentialsUnavailableException("secret-detail: nothing configured")
                : ValueTask.FromResult(Example);
        }
    }
}
