using System.Text.Json;
using LlmProxy.OpenAi;

namespace LlmProxy.Tests.OpenAi;

public sealed class ErrorResponseWriterTests
{
    [Fact]
    public void Serialize_AlwaysWritesAllFourFields_NullsIncluded()
    {
        var json = JsonDocument.Parse(ErrorResponseWriter.Serialize(new OpenAiError("boom", "server_error", null, null)));

        var error = json.RootElement.GetProperty("error");
        Assert.Equal("boom", error.GetProperty("message").GetString());
        Assert.Equal("server_error", error.GetProperty("type").GetString());
        Assert.Equal(JsonValueKind.Null, error.GetProperty("param").ValueKind);
        Assert.Equal(JsonValueKind.Null, error.GetProperty("code").ValueKind);
    }

    [Fact]
    public async Task WriteAsync_WithRetryAfter_SetsStatusHeaderAndJsonBody()
    {
        var context = new DefaultHttpContext();
        context.Response.Body = new MemoryStream();

        await ErrorResponseWriter.WriteAsync(context, new GatewayError(429, new OpenAiError("slow down", "requests", null, "rate_limit_exceeded")) { RetryAfterSeconds = 7 });

        Assert.Equal(429, context.Response.StatusCode);
        Assert.Equal("7", context.Response.Headers.RetryAfter.ToString());
        Assert.Equal("application/json", context.Response.ContentType);
        context.Response.Body.Position = 0;
        var body = JsonDocument.Parse(context.Response.Body);
        Assert.Equal("rate_limit_exceeded", body.RootElement.GetProperty("error").GetProperty("code").GetString());
    }
}
