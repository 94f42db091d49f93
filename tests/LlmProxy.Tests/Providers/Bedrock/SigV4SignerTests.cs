using Xunit;
using System.Net.Http.Headers;
using System.Text;
using LlmProxy.Providers;
using LlmProxy.Providers.Bedrock;
using Microsoft.Extensions.Logging.Abstractions;

namespace LlmProxy.Tests.Providers.Bedrock;

/// <summary>
/// The signer against AWS's SigV4 test suite (the vectors of awslabs/aws-c-auth tests/aws-signing-test-suite/v4,
/// also shipped by botocore and the other SDKs; Apache-2.0): canonical request, string to sign and
/// Authorization header must match character for character.
/// </summary>
public class SigV4SignerTests
{
    private static readonly AwsCredentials Example = new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    private static readonly DateTimeOffset VectorTime = new(2015, 8, 30, 12, 36, 0, TimeSpan.Zero);
    private const string SessionToken =
        "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

    public sealed record Vector(string Method, string Path, string Query, (string, string)[] Headers, string Body, string? Token,
        string CanonicalRequest, string StringToSign, string Authorization);

    public static TheoryData<string> VectorNames => new(Vectors.Keys);

    private static readonly Dictionary<string, Vector> Vectors = new()
    {
        ["get-vanilla"] = new("GET", "/", "", [("Host", "example.amazonaws.com")], "", null,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        ["post-vanilla"] = new("POST", "/", "", [("Host", "example.amazonaws.com")], "", null,
            "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
        ["post-x-www-form-urlencoded"] = new("POST", "/", "",
            [("Content-Type", "application/x-www-form-urlencoded"), ("Host", "example.amazonaws.com"), ("Content-Length", "13"),
             ("x-amz-content-sha256", "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e")],
            "Param1=value1", null,
            "POST\n/\n\ncontent-length:13\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\n" +
            "x-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e\nx-amz-date:20150830T123600Z\n\n" +
            "content-length;content-type;host;x-amz-content-sha256;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nb1edd1d03544c25390e32085d55b57acc9a3961bb59415ff86c45c3d89d16cfb",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, Signature=d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b"),
        ["get-vanilla-query-order-key-case"] = new("GET", "/", "?Param2=value2&Param1=value1", [("Host", "example.amazonaws.com")], "", null,
            "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
        ["get-vanilla-utf8-query"] = new("GET", "/", "?ሴ=bar", [("Host", "example.amazonaws.com")], "", null,
            "GET\n/\n%E1%88%B4=bar\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\neb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"),
        ["get-vanilla-query-unreserved"] = new("GET", "/",
            "?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            [("Host", "example.amazonaws.com")], "", null,
            "GET\n/\n-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n" +
            "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nc30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"),
        ["get-space-normalized"] = new("GET", "/example space/", "", [("Host", "example.amazonaws.com")], "", null,
            "GET\n/example%20space/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"),
        ["post-sts-header-before"] = new("POST", "/", "", [("Host", "example.amazonaws.com"), ("X-Amz-Security-Token", SessionToken)], "", SessionToken,
            $"POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\nx-amz-security-token:{SessionToken}\n\nhost;x-amz-date;x-amz-security-token\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nc237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"),
    };

    [Theory]
    [MemberData(nameof(VectorNames))]
    public void Sign_AwsTestSuiteVector_ReproducesEveryStep(string name)
    {
        var vector = Vectors[name];
        var headers = vector.Headers.Select(h => new KeyValuePair<string, string>(h.Item1, h.Item2))
            .Append(new("X-Amz-Date", "20150830T123600Z"));

        var signature = SigV4Signer.Sign(vector.Method, SigV4Signer.CanonicalUri(vector.Path), SigV4Signer.CanonicalQuery(vector.Query), headers,
            SigV4Signer.HexSha256(Encoding.UTF8.GetBytes(vector.Body)), Example with { SessionToken = vector.Token }, "us-east-1", "service", VectorTime);

        Assert.Equal(vector.CanonicalRequest, signature.CanonicalRequest);
        Assert.Equal(vector.StringToSign, signature.StringToSign);
        Assert.Equal(vector.Authorization, signature.Authorization);
    }

    [Fact]
    public void DeriveSigningKey_AwsDocumentationExample_MatchesPublishedKey()
    {
        // AWS General Reference, "Examples of how to derive a signing key for Signature Version 4".
        var key = SigV4Signer.DeriveSigningKey("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam");

        Assert.Equal("f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d", Convert.ToHexStringLower(key));
    }

    [Theory]
    [InlineData("/", "/")]
    [InlineData("", "/")]
    [InlineData("/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse", "/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse")]
    [InlineData("/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.x/converse-stream",
        "/model/arn%253Aaws%253Abedrock%253Aus-east-1%253A123456789012%253Ainference-profile%252Fus.x/converse-stream")]
    public void CanonicalUri_WirePath_EncodesEachSegmentAgain(string wirePath, string expected)
    {
        Assert.Equal(expected, SigV4Signer.CanonicalUri(wirePath));
    }

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

        var signature = Authenticator(new FakeTimeProvider(VectorTime)).Sign(request, Encoding.UTF8.GetBytes(ConverseBody),
            Example with { SessionToken = token }, VectorTime);

        Assert.Equal(
            $"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, SignedHeaders={signedHeaders}, Signature={expectedSignature}",
            signature.Authorization);
        Assert.StartsWith("POST\n/model/arn%253Aaws%253Abedrock%253Aus-east-1%253A123456789012%253Ainference-profile%252Fus.anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse\n\n",
            signature.CanonicalRequest);
        // What goes on the wire is the single-encoded path, and the headers that were signed.
        Assert.Equal("/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
            request.RequestUri!.PathAndQuery);
        Assert.Equal("bedrock-runtime.us-east-1.amazonaws.com", request.Headers.Host);
        Assert.Equal("20150830T123600Z", request.Headers.GetValues("x-amz-date").Single());
        Assert.Equal("7421da8d1a0949a481724fee62d5886aacde03836bf58248adb73e8b61ac0d54", request.Headers.GetValues("x-amz-content-sha256").Single());
        Assert.Equal(token is not null, request.Headers.Contains("x-amz-security-token"));
        Assert.Equal(signature.Authorization, request.Headers.GetValues("Authorization").Single());
    }

    [Fact]
    public void Sign_NonDefaultPort_SignsAndSendsHostWithPort()
    {
        var request = BedrockRequest("http://127.0.0.1:8091/bedrock/model/m/converse");

        var signature = Authenticator(new FakeTimeProvider(VectorTime)).Sign(request, "{}"u8, Example, VectorTime);

        Assert.Equal("127.0.0.1:8091", request.Headers.Host);
        Assert.Contains("\nhost:127.0.0.1:8091\n", signature.CanonicalRequest);
        Assert.StartsWith("POST\n/bedrock/model/m/converse\n", signature.CanonicalRequest);
    }

    [Fact]
    public void Sign_SignedTwice_ReplacesEarlierSignatureHeaders()
    {
        var request = BedrockRequest("https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse");
        var authenticator = Authenticator(new FakeTimeProvider(VectorTime));

        authenticator.Sign(request, "{}"u8, Example with { SessionToken = "t" }, VectorTime);
        var second = authenticator.Sign(request, "{}"u8, Example, VectorTime.AddMinutes(1));

        Assert.Equal(second.Authorization, request.Headers.GetValues("Authorization").Single());
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
