using System.Net;
using System.Text;
using LlmProxy.Providers;
using LlmProxy.Telemetry;
using Xunit;

namespace LlmProxy.Tests.Providers.Bedrock;

public class BedrockErrorsTests
{
    public sealed record ErrorCase(string Type, int UpstreamStatus, int ClientStatus, bool Retryable, string? Code, bool PassesMessage);

    /// <summary>Every Bedrock Runtime error type of Converse/ConverseStream (and the generic AWS auth errors), with its HTTP status per the Smithy model.</summary>
    private static readonly ErrorCase[] ErrorTable =
    [
        new("ValidationException", 400, 400, false, null, PassesMessage: true),
        new("ThrottlingException", 429, 429, true, "rate_limit_exceeded", false),
        new("ServiceQuotaExceededException", 400, 429, true, "rate_limit_exceeded", false),
        new("AccessDeniedException", 403, 502, true, "upstream_authentication_failed", false),
        new("UnrecognizedClientException", 403, 502, true, "upstream_authentication_failed", false),
        new("InvalidSignatureException", 403, 502, true, "upstream_authentication_failed", false),
        new("ExpiredTokenException", 403, 502, true, "upstream_authentication_failed", false),
        new("ResourceNotFoundException", 404, 404, false, "model_not_found", false),
        new("ModelTimeoutException", 408, 504, true, "upstream_timeout", false),
        new("ServiceUnavailableException", 503, 503, true, "upstream_unavailable", false),
        new("ModelNotReadyException", 429, 503, true, "upstream_unavailable", false),
        new("InternalServerException", 500, 502, true, "upstream_error", false),
        new("ModelErrorException", 424, 502, true, "upstream_error", false),
    ];

    public static TheoryData<string> Types => new(ErrorTable.Select(e => e.Type));

    private const string UpstreamMessage = "Upstream says: account 123456789012 detail";

    private static UpstreamFailure Translate(HttpResponseMessage response, string body) =>
        BedrockTest.Translator("""{"model":"claude","messages":[{"role":"user","content":"Hi"}]}""")
            .TranslateError(response, Encoding.UTF8.GetBytes(body));

    private static HttpResponseMessage Response(int status, string? errorTypeHeader = null)
    {
        var response = new HttpResponseMessage((HttpStatusCode)status);
        if (errorTypeHeader is not null)
        {
            response.Headers.TryAddWithoutValidation("x-amzn-ErrorType", errorTypeHeader);
        }
        response.Headers.TryAddWithoutValidation("x-amzn-RequestId", "6f1b0a6e-0000-4000-8000-000000000001");
        return response;
    }

    [Theory]
    [InlineData("ValidationException", 400, UpstreamOutcomes.ClientError)]
    [InlineData("ThrottlingException", 429, UpstreamOutcomes.RateLimited)]
    [InlineData("ServiceQuotaExceededException", 400, UpstreamOutcomes.RateLimited)]
    [InlineData("AccessDeniedException", 403, UpstreamOutcomes.AuthError)]
    [InlineData("ResourceNotFoundException", 404, UpstreamOutcomes.ClientError)]
    [InlineData("ModelTimeoutException", 408, UpstreamOutcomes.Timeout)]
    [InlineData("ServiceUnavailableException", 503, UpstreamOutcomes.ServerError)]
    [InlineData("InternalServerException", 500, UpstreamOutcomes.ServerError)]
    public void TranslateError_BedrockType_MetricOutcomeFollowsTheMappedStatus(string type, int status, string outcome)
    {
        using var response = Response(status, $"{type}:http://internal.amazon.com/coral/com.amazon.bedrock/");

        var failure = Translate(response, "{\"message\":\"m\"}");

        // The reason stays Bedrock's own; the outcome label of attempts and failovers is not "other".
        Assert.Equal(outcome, UpstreamOutcomes.FromFailure(failure));
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void TranslateError_TypeInHeader_MapsStatusRetryabilityAndCode(string type)
    {
        var expected = ErrorTable.Single(e => e.Type == type);
        using var response = Response(expected.UpstreamStatus, $"{type}:http://internal.amazon.com/coral/com.amazon.bedrock/");

        var failure = Translate(response, $$"""{"message":"{{UpstreamMessage}}"}""");

        Assert.Equal(expected.ClientStatus, failure.ClientStatus);
        Assert.Equal(expected.Retryable, failure.IsRetryable);
        Assert.Equal(expected.Code, failure.Error.Code);
        Assert.Equal("6f1b0a6e-0000-4000-8000-000000000001", failure.UpstreamRequestId);
        Assert.Equal("bedrock_" + type, failure.Reason);
        if (expected.PassesMessage)
        {
            Assert.Equal(UpstreamMessage, failure.Error.Message);
        }
        else
        {
            // Not the client's to fix: the client learns which deployment failed, not Bedrock's internals.
            Assert.DoesNotContain("123456789012", failure.Error.Message);
            Assert.Contains("bedrock-test", failure.Error.Message);
        }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void TranslateError_TypeOnlyInBody_MapsTheSame(string type)
    {
        var expected = ErrorTable.Single(e => e.Type == type);
        using var response = Response(expected.UpstreamStatus);

        var failure = Translate(response, $$"""{"__type":"com.amazon.bedrock#{{type}}","Message":"{{UpstreamMessage}}"}""");

        Assert.Equal(expected.ClientStatus, failure.ClientStatus);
        Assert.Equal(expected.Code, failure.Error.Code);
        if (expected.PassesMessage)
        {
            Assert.Equal(UpstreamMessage, failure.Error.Message);
        }
    }

    [Fact]
    public void TranslateError_AccessDenied_NamesAGatewayCredentialProblem()
    {
        using var response = Response(403, "AccessDeniedException");

        var failure = Translate(response, """{"message":"You don't have access to the model with the specified model ID."}""");

        Assert.Contains("gateway's credentials", failure.Error.Message);
        Assert.Contains("not a problem with your key", failure.Error.Message);
    }

    [Fact]
    public void TranslateError_ResourceNotFound_IsModelNotFoundForTheClientModel()
    {
        using var response = Response(404, "ResourceNotFoundException");

        var failure = Translate(response, """{"message":"Model not found."}""");

        Assert.Equal("model", failure.Error.Param);
        Assert.Contains("'claude'", failure.Error.Message);
    }

    [Fact]
    public void TranslateError_ThrottlingWithRetryAfter_KeepsRetryAfter()
    {
        using var response = Response(429, "ThrottlingException");
        response.Headers.RetryAfter = new System.Net.Http.Headers.RetryConditionHeaderValue(TimeSpan.FromSeconds(7));

        var failure = Translate(response, """{"message":"Too many requests, please wait before trying again."}""");

        Assert.Equal(TimeSpan.FromSeconds(7), failure.RetryAfter);
    }

    [Theory]
    [InlineData(400, "", 400, false)]
    [InlineData(500, "<html>oops</html>", 502, true)]
    [InlineData(503, "", 503, true)]
    [InlineData(429, "{}", 429, true)]
    public void TranslateError_NoErrorType_FallsBackOnStatus(int status, string body, int clientStatus, bool retryable)
    {
        using var response = Response(status);

        var failure = Translate(response, body);

        Assert.Equal(clientStatus, failure.ClientStatus);
        Assert.Equal(retryable, failure.IsRetryable);
        Assert.Equal($"status_{status}", failure.Reason);
    }

    [Fact]
    public void TranslateError_UnknownTypeWithClientStatus_PassesMessage()
    {
        using var response = Response(400, "ConflictException");

        var failure = Translate(response, """{"message":"conflict detail"}""");

        Assert.Equal(400, failure.ClientStatus);
        Assert.Equal("conflict detail", failure.Error.Message);
    }
}
