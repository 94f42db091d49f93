using System.Text;
using LlmProxy.Simulator.Bedrock;
using Xunit;

namespace LlmProxy.Tests.Simulator;

public sealed class BedrockSigV4VerifierTests
{
    // AWS's documented example credentials and signing time (SigV4 documentation and its test suite).
    private const string ExampleAccessKeyId = "AKIDEXAMPLE";
    private const string ExampleSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    private static readonly DateTimeOffset s_exampleTime = new(2015, 8, 30, 12, 36, 0, TimeSpan.Zero);

    private static readonly Uri s_base = new("http://127.0.0.1:5005/");
    private static readonly DateTimeOffset s_now = new(2026, 11, 22, 10, 0, 0, TimeSpan.Zero);

    private static SigV4Verifier Verifier(string service = "bedrock", DateTimeOffset? now = null) => new(
        new Dictionary<string, string> { [ExampleAccessKeyId] = ExampleSecret, [BedrockHttp.AccessKeyId] = BedrockHttp.Secret },
        service,
        new FakeTimeProvider(now ?? s_now));

    /// <summary>
    /// The worked example of AWS's SigV4 documentation: IAM ListUsers, whose canonical request hashes to
    /// f536975d... and whose signature is 5d672d79....
    /// </summary>
    private static SigV4Request IamListUsersExample(string signature = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7") => new(
        "GET",
        "/",
        "Action=ListUsers&Version=2010-05-08",
        [
            new("Host", "iam.amazonaws.com"),
            new("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
            new("X-Amz-Date", "20150830T123600Z"),
            new("Authorization", $"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature={signature}"),
        ],
        ReadOnlyMemory<byte>.Empty);

    [Fact]
    public void CanonicalRequest_AwsDocumentedExample_HashesToTheDocumentedValue()
    {
        var canonical = SigV4Verifier.CanonicalRequest(IamListUsersExample(), ["content-type", "host", "x-amz-date"]);

        Assert.Equal(
            "GET\n/\nAction=ListUsers&Version=2010-05-08\ncontent-type:application/x-www-form-urlencoded; charset=utf-8\nhost:iam.amazonaws.com\n"
            + "x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            canonical);
        Assert.Equal(
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\nf536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59",
            SigV4Verifier.StringToSign("20150830T123600Z", "20150830/us-east-1/iam/aws4_request", canonical));
    }

    [Fact]
    public void Verify_AwsDocumentedExample_Accepts()
    {
        Assert.Null(Verifier("iam", s_exampleTime).Verify(IamListUsersExample()));
    }

    [Fact]
    public void Verify_AwsTestSuiteGetVanilla_Accepts()
    {
        var request = new SigV4Request(
            "GET",
            "/",
            string.Empty,
            [
                new("Host", "example.amazonaws.com"),
                new("X-Amz-Date", "20150830T123600Z"),
                new("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
            ],
            ReadOnlyMemory<byte>.Empty);

        Assert.Null(Verifier("service", s_exampleTime).Verify(request));
    }

    [Fact]
    public void Verify_DocumentedExampleWithOneSignatureDigitChanged_RejectsWithExpectedCanonicalString()
    {
        var error = Verifier("iam", s_exampleTime).Verify(IamListUsersExample("5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d8"));

        Assert.NotNull(error);
        Assert.Equal(403, error.StatusCode);
        Assert.Equal("InvalidSignatureException", error.Type);
        Assert.StartsWith("The request signature we calculated does not match the signature you provided.", error.Message);
        Assert.Contains("'GET\n/\nAction=ListUsers&Version=2010-05-08\n", error.Message);
    }

    [Fact]
    public void CanonicalUri_InferenceProfileArn_EncodesEverySegmentAgain()
    {
        var raw = BedrockHttp.RawPath(BedrockHttp.ProfileArn);
        Assert.Equal(
            "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse",
            raw);

        Assert.Equal(
            "/model/arn%253Aaws%253Abedrock%253Aus-east-1%253A123456789012%253Ainference-profile%252Fus.anthropic.claude-3-7-sonnet-20250219-v1%253A0/converse",
            SigV4Verifier.CanonicalUri(raw));
    }

    [Theory]
    [InlineData("", "/")]
    [InlineData("/", "/")]
    [InlineData("/a/./b/../c/", "/a/c/")]
    [InlineData("//model//x", "/model/x")]
    [InlineData("/example space", "/example%20space")]
    public void CanonicalUri_NormalizesAndEncodes(string rawPath, string expected) =>
        Assert.Equal(expected, SigV4Verifier.CanonicalUri(rawPath));

    [Fact]
    public void CanonicalQuery_SortsByNameThenValueAndEncodesOnce()
    {
        Assert.Equal("a=1&a=2&b=x%20y&c=", SigV4Verifier.CanonicalQuery("b=x%20y&a=2&c&a=1"));
        Assert.Equal(string.Empty, SigV4Verifier.CanonicalQuery(string.Empty));
    }

    [Fact]
    public void Verify_AwsSdkSignedInferenceProfileRequest_Accepts()
    {
        var request = Signed(BedrockHttp.RawPath(BedrockHttp.ProfileArn), """{"messages":[]}""");

        Assert.Null(Verifier().Verify(request));
    }

    [Fact]
    public void Verify_BodyChangedAfterSigning_RejectsWithInvalidSignature()
    {
        var request = Signed(BedrockHttp.RawPath(BedrockHttp.ModelId), """{"messages":[{"role":"user","content":[{"text":"hi"}]}]}""");
        var tampered = request with { Body = Encoding.UTF8.GetBytes("""{"messages":[{"role":"user","content":[{"text":"ho"}]}]}""") };

        var error = Verifier().Verify(tampered);

        Assert.Equal("InvalidSignatureException", error?.Type);
    }

    [Fact]
    public void Verify_PathChangedAfterSigning_RejectsWithInvalidSignature()
    {
        var request = Signed(BedrockHttp.RawPath(BedrockHttp.ModelId), "{}");

        var error = Verifier().Verify(request with { RawPath = BedrockHttp.RawPath(BedrockHttp.ModelId, stream: true) });

        Assert.Equal("InvalidSignatureException", error?.Type);
    }

    [Fact]
    public void Verify_WrongSecret_RejectsWithInvalidSignature()
    {
        var request = Signed(BedrockHttp.RawPath(BedrockHttp.ModelId), "{}", secret: "not-the-secret");

        var error = Verifier().Verify(request);

        Assert.NotNull(error);
        Assert.Equal((403, "InvalidSignatureException"), (error.StatusCode, error.Type));
        Assert.Equal("http://internal.amazon.com/coral/com.amazon.coral.service/", error.Namespace);
    }

    [Fact]
    public void Verify_UnknownAccessKey_RejectsWithUnrecognizedClient()
    {
        var error = Verifier().Verify(Signed(BedrockHttp.RawPath(BedrockHttp.ModelId), "{}", accessKeyId: "AKIDSTRANGER"));

        Assert.NotNull(error);
        Assert.Equal((403, "UnrecognizedClientException", "The security token included in the request is invalid."), (error.StatusCode, error.Type, error.Message));
    }

    [Fact]
    public void Verify_SignedSixMinutesAgo_RejectsAsExpired()
    {
        var error = Verifier().Verify(Signed(BedrockHttp.RawPath(BedrockHttp.ModelId), "{}", signedAt: s_now.AddMinutes(-6)));

        Assert.NotNull(error);
        Assert.Equal("InvalidSignatureException", error.Type);
        Assert.Equal("Signature expired: 20261122T095400Z is now earlier than 20261122T095500Z (20261122T100000Z - 5 min.)", error.Message);
    }

    [Fact]
    public void Verify_SignedSixMinutesAhead_RejectsAsNotYetCurrent()
    {
        var error = Verifier().Verify(Signed(BedrockHttp.RawPath(BedrockHttp.ModelId), "{}", signedAt: s_now.AddMinutes(6)));

        Assert.Equal("InvalidSignatureException", error?.Type);
        Assert.StartsWith("Signature not yet current: 20261122T100600Z is still later than 20261122T100500Z", error?.Message);
    }

    [Theory]
    [InlineData(-4.9)]
    [InlineData(4.9)]
    public void Verify_ClockSkewWithinFiveMinutes_Accepts(double minutes) =>
        Assert.Null(Verifier().Verify(Signed(BedrockHttp.RawPath(BedrockHttp.ModelId), "{}", signedAt: s_now.AddMinutes(minutes))));

    [Fact]
    public void Verify_SignedSessionToken_Accepts()
    {
        var request = Signed(BedrockHttp.RawPath(BedrockHttp.ModelId), "{}", sessionToken: "FwoGZXIvYXdzEXAMPLE");

        Assert.Contains(request.Headers, h => h.Key.Equals("x-amz-security-token", StringComparison.OrdinalIgnoreCase));
        Assert.Null(Verifier().Verify(request));
    }

    [Fact]
    public void Verify_SessionTokenAddedAfterSigning_Rejects()
    {
        var request = Signed(BedrockHttp.RawPath(BedrockHttp.ModelId), "{}");

        var error = Verifier().Verify(request with { Headers = [.. request.Headers, new("X-Amz-Security-Token", "smuggled")] });

        Assert.Equal("IncompleteSignatureException", error?.Type);
    }

    [Fact]
    public void Verify_WrongService_RejectsNamingTheRightOne()
    {
        var error = Verifier().Verify(Signed(BedrockHttp.RawPath(BedrockHttp.ModelId), "{}", service: "bedrock-runtime"));

        Assert.Equal("InvalidSignatureException", error?.Type);
        Assert.StartsWith("Credential should be scoped to correct service: 'bedrock'.", error?.Message);
    }

    [Fact]
    public void Verify_NoAuthorization_RejectsWithMissingAuthenticationToken()
    {
        var request = Signed(BedrockHttp.RawPath(BedrockHttp.ModelId), "{}");

        var error = Verifier().Verify(request with { Headers = request.Headers.Where(h => !h.Key.Equals("Authorization", StringComparison.OrdinalIgnoreCase)).ToList() });

        Assert.Equal((403, "MissingAuthenticationTokenException"), (error?.StatusCode, error?.Type));
    }

    [Theory]
    [InlineData("Bearer some-api-key")]
    [InlineData("AWS4-HMAC-SHA256 Credential=AKIDSIMULATOR/20261122/us-east-1/bedrock/aws4_request")]
    public void Verify_IncompleteAuthorization_RejectsWithIncompleteSignature(string authorization)
    {
        var request = Signed(BedrockHttp.RawPath(BedrockHttp.ModelId), "{}");
        var headers = request.Headers.Where(h => !h.Key.Equals("Authorization", StringComparison.OrdinalIgnoreCase)).Append(new("Authorization", authorization)).ToList();

        var error = Verifier().Verify(request with { Headers = headers });

        Assert.Equal("IncompleteSignatureException", error?.Type);
        Assert.Contains("Authorization header requires 'Signature' parameter.", error?.Message);
    }

    [Fact]
    public void Verify_HostNotSigned_RejectsWithIncompleteSignature()
    {
        var request = Signed(BedrockHttp.RawPath(BedrockHttp.ModelId), "{}");
        var headers = request.Headers.Select(h => h.Key.Equals("Authorization", StringComparison.OrdinalIgnoreCase)
            ? new KeyValuePair<string, string>(h.Key, h.Value.Replace("content-type;host;", "content-type;", StringComparison.Ordinal))
            : h).ToList();

        var error = Verifier().Verify(request with { Headers = headers });

        Assert.Equal("IncompleteSignatureException", error?.Type);
        Assert.Equal("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.", error?.Message);
    }

    /// <summary>A request signed by AWSSDK.Core's AWS4Signer, as it would arrive: the signer's headers plus Host.</summary>
    private static SigV4Request Signed(
        string rawPath,
        string json,
        string accessKeyId = BedrockHttp.AccessKeyId,
        string secret = BedrockHttp.Secret,
        DateTimeOffset? signedAt = null,
        string? sessionToken = null,
        string service = "bedrock")
    {
        var body = Encoding.UTF8.GetBytes(json);
        var headers = BedrockHttp.SignWithAwsSdk(s_base, rawPath, body, accessKeyId, secret, (signedAt ?? s_now).UtcDateTime, sessionToken, service);
        var wire = headers.Where(h => !h.Key.Equals("host", StringComparison.OrdinalIgnoreCase)).ToList();
        wire.Add(new("Host", "127.0.0.1:5005"));
        wire.Add(new("Content-Length", body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        return new SigV4Request("POST", rawPath, string.Empty, wire, body);
    }
}
