using System.Text;
using LlmProxy.OpenAi;

namespace LlmProxy.Tests.OpenAi;

public sealed class ChatRequestParserTests
{
    private static (ChatRequest? Request, GatewayError? Error) Parse(string json)
    {
        ChatRequestParser.TryParse(Encoding.UTF8.GetBytes(json), out var request, out var error);
        return (request, error);
    }

    [Fact]
    public void TryParse_ValidRequest_ReadsModelStreamAndUsageFlag()
    {
        var (request, error) = Parse("""{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true},"temperature":0.2}""");

        Assert.Null(error);
        Assert.Equal("gpt-4o", request!.Model);
        Assert.True(request.Stream);
        Assert.True(request.IncludeUsage);
        Assert.Single(request.Messages);
        Assert.Equal(0.2, request.Body["temperature"]!.GetValue<double>());
    }

    [Theory]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}]}""", "model", "missing_required_parameter")]
    [InlineData("""{"model":"","messages":[{"role":"user","content":"hi"}]}""", "model", "invalid_value")]
    [InlineData("""{"model":42,"messages":[{"role":"user","content":"hi"}]}""", "model", "invalid_value")]
    [InlineData("""{"model":"m"}""", "messages", "missing_required_parameter")]
    [InlineData("""{"model":"m","messages":[]}""", "messages", "invalid_value")]
    [InlineData("""{"model":"m","messages":"hi"}""", "messages", "invalid_value")]
    [InlineData("""{"model":"m","messages":[42]}""", "messages[0]", "invalid_value")]
    [InlineData("""{"model":"m","messages":[{"content":"hi"}]}""", "messages[0].role", "missing_required_parameter")]
    [InlineData("""{"model":"m","messages":[{"role":"wizard","content":"hi"}]}""", "messages[0].role", "invalid_value")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":"yes"}""", "stream", "invalid_value")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"hi"}],"stream_options":3}""", "stream_options", "invalid_value")]
    public void TryParse_InvalidField_Returns400NamingTheParam(string json, string param, string code)
    {
        var (request, error) = Parse(json);

        Assert.Null(request);
        Assert.Equal(400, error!.StatusCode);
        Assert.Equal(param, error.Error.Param);
        Assert.Equal(code, error.Error.Code);
        Assert.Equal("invalid_request_error", error.Error.Type);
    }

    [Theory]
    [InlineData("{not json")]
    [InlineData("[1,2,3]")]
    [InlineData("")]
    [InlineData("""{"model":"a","model":"b","messages":[{"role":"user","content":"x"}]}""")]
    public void TryParse_NotAJsonObject_Returns400InvalidJson(string json)
    {
        var (request, error) = Parse(json);

        Assert.Null(request);
        Assert.Equal(400, error!.StatusCode);
        Assert.Equal("invalid_json", error.Error.Code);
    }

    [Fact]
    public void TryParse_NoStreamOptions_IncludeUsageIsFalse()
    {
        var (request, _) = Parse("""{"model":"m","messages":[{"role":"user","content":"x"}],"stream":true}""");

        Assert.True(request!.Stream);
        Assert.False(request.IncludeUsage);
    }

    [Fact]
    public void TryParse_InvalidUtf8InContent_Returns400InvalidValueNamingTheField()
    {
        byte[] body = [.. """{"model":"m","messages":[{"role":"user","content":"a"""u8, 0xC3, 0x28, .. "\"}]}"u8];

        var parsed = ChatRequestParser.TryParse(body, out var request, out var error, out var model);

        Assert.False(parsed);
        Assert.Null(request);
        Assert.Equal(400, error!.StatusCode);
        Assert.Equal("invalid_value", error.Error.Code);
        Assert.Equal("messages[0].content", error.Error.Param);
        Assert.Equal("m", model);
    }

    [Fact]
    public void TryParse_LoneSurrogateInContent_Returns400InvalidValueNamingTheField()
    {
        var (request, error) = Parse("""{"model":"m","messages":[{"role":"user","content":"a\ud800b"}]}""");

        Assert.Null(request);
        Assert.Equal("invalid_value", error!.Error.Code);
        Assert.Equal("messages[0].content", error.Error.Param);
    }

    [Theory]
    [InlineData("""{"model":"gpt-4o"}""", "gpt-4o")]
    [InlineData("""{"model":"gpt-4o","messages":[{"role":"wizard"}]}""", "gpt-4o")]
    [InlineData("""{"model":"gpt-4o","messages":[{"role":"user","content":"\udc00"}]}""", "gpt-4o")]
    [InlineData("""{"model":"gpt-\ud800","messages":[{"role":"user","content":"x"}]}""", null)]
    [InlineData("""{"model":42,"messages":[]}""", null)]
    [InlineData("""{"model":"a","model":"b","messages":[{"role":"user","content":"x"}]}""", null)]
    public void TryParse_RefusedRequest_ReportsTheModelItNamesWhenReadable(string json, string? expected)
    {
        var parsed = ChatRequestParser.TryParse(Encoding.UTF8.GetBytes(json), out _, out var error, out var model);

        Assert.False(parsed);
        Assert.NotNull(error);
        Assert.Equal(expected, model);
    }
}
