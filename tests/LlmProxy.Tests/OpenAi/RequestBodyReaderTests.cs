using LlmProxy.OpenAi;

namespace LlmProxy.Tests.OpenAi;

public sealed class RequestBodyReaderTests
{
    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("application/json")]
    [InlineData("Application/JSON")]
    [InlineData("application/json; charset=utf-8")]
    [InlineData("application/json; charset=UTF-8")]
    [InlineData("application/json; charset=\"utf-8\"")]
    [InlineData("application/json;charset=utf8")]
    [InlineData("application/json; boundary=x; foo=bar")]
    public void CheckContentType_JsonOrNone_IsAccepted(string? contentType)
    {
        Assert.Null(RequestBodyReader.CheckContentType(contentType));
    }

    [Theory]
    [InlineData("text/plain")]
    [InlineData("text/plain; charset=utf-8")]
    [InlineData("application/x-www-form-urlencoded")]
    [InlineData("multipart/form-data; boundary=x")]
    [InlineData("application/jsonx")]
    [InlineData("application/json; charset=utf-16")]
    [InlineData("application/json; charset=iso-8859-1")]
    [InlineData("not a media type")]
    public void CheckContentType_AnotherMediaTypeOrCharset_Returns415(string contentType)
    {
        var error = RequestBodyReader.CheckContentType(contentType);

        Assert.NotNull(error);
        Assert.Equal(415, error.StatusCode);
        Assert.Equal("unsupported_media_type", error.Error.Code);
        Assert.Equal("invalid_request_error", error.Error.Type);
    }

    [Fact]
    public async Task ReadAsync_FormContentType_Returns415WithoutReadingTheBody()
    {
        var context = new DefaultHttpContext();
        context.Request.ContentType = "application/x-www-form-urlencoded";
        var body = new MemoryStream("model=gpt"u8.ToArray());
        context.Request.Body = body;

        var (_, error) = await RequestBodyReader.ReadAsync(context, 1024);

        Assert.Equal(415, error?.StatusCode);
        Assert.Equal(0, body.Position);
    }
}
