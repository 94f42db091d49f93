using System.Text;
using LlmProxy.Caching;

namespace LlmProxy.Tests.Caching;

public sealed class ResponseCaptureTests
{
    [Fact]
    public void TryGetCompletion_CompleteBody_ReturnsIt()
    {
        var capture = new ResponseCapture(1024 * 1024);
        capture.OnResponse(Encoding.UTF8.GetBytes(CacheTestData.Completion));

        Assert.Equal(CacheTestData.Completion, Encoding.UTF8.GetString(capture.TryGetCompletion(streamed: false, null)!));
    }

    [Theory]
    [InlineData("""{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"a"},"finish_reason":null}]}""")]
    [InlineData("""{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"a"}}]}""")]
    [InlineData("""{"id":"x","object":"chat.completion","choices":[]}""")]
    [InlineData("""{"error":{"message":"boom"}}""")]
    [InlineData("""not json""")]
    [InlineData("""{"id":"x","choices":[{"index":0,"finish_reason":"stop"},{"index":1,"finish_reason":""}]}""")]
    [InlineData("""{"id":"x","choices":[{"index":0,"finish_reason":"stop"}],"error":null}""")]
    [InlineData("""{"id":"x","choices":[{"index":0,"message":{"finish_reason":"stop"}}]}""")]
    [InlineData("""{"id":"x","choices":[{"index":0,"finish_reason":"stop"}""")]
    [InlineData("""{"id":"x","choices":{"index":0,"finish_reason":"stop"}}""")]
    public void TryGetCompletion_IncompleteOrErrorBody_ReturnsNull(string body)
    {
        var capture = new ResponseCapture(1024 * 1024);
        capture.OnResponse(Encoding.UTF8.GetBytes(body));

        Assert.Null(capture.TryGetCompletion(streamed: false, null));
        Assert.Equal("incomplete_choices", capture.RejectionReason);
    }

    [Fact]
    public void TryGetCompletion_BodyKeptWithoutACopy_IsTheBodyTheClientWasSent()
    {
        var body = Encoding.UTF8.GetBytes("""{"id":"x","choices":[{"finish_reason":"stop","index":0},{"index":1,"finish_reason":"length"}],"usage":null}""");
        var capture = new ResponseCapture(1024 * 1024);
        capture.OnResponse(body);

        Assert.Same(body, capture.TryGetCompletion(streamed: false, null));
    }

    [Fact]
    public void TryGetCompletion_BodyOverMaxEntryBytes_ReturnsNull()
    {
        var capture = new ResponseCapture(10);
        capture.OnResponse(Encoding.UTF8.GetBytes(CacheTestData.Completion));

        Assert.Null(capture.TryGetCompletion(streamed: false, null));
        Assert.Equal("too_large", capture.RejectionReason);
    }

    [Fact]
    public void TryGetCompletion_StreamEndedWithError_ReturnsNull()
    {
        var capture = new ResponseCapture(1024 * 1024);
        foreach (var chunk in CacheTestData.TextChunks("Hi"))
        {
            capture.OnChunk(chunk);
        }
        capture.OnStreamEnd(completed: false);

        Assert.Null(capture.TryGetCompletion(streamed: true, CacheTestData.Usage));
    }

    [Fact]
    public void TryGetCompletion_StreamNeverEnded_ReturnsNull()
    {
        var capture = new ResponseCapture(1024 * 1024);
        foreach (var chunk in CacheTestData.TextChunks("Hi"))
        {
            capture.OnChunk(chunk);
        }

        Assert.Null(capture.TryGetCompletion(streamed: true, CacheTestData.Usage));
    }

    [Fact]
    public void TryGetCompletion_FailedAttemptThenCompleteStream_KeepsOnlyTheSecond()
    {
        var capture = new ResponseCapture(1024 * 1024);
        capture.OnStreamEnd(completed: false);
        foreach (var chunk in CacheTestData.TextChunks("Second"))
        {
            capture.OnChunk(chunk);
        }
        capture.OnStreamEnd(completed: true);

        var completion = System.Text.Json.Nodes.JsonNode.Parse(capture.TryGetCompletion(streamed: true, CacheTestData.Usage)!)!;
        Assert.Equal("Second", completion["choices"]![0]!["message"]!["content"]!.GetValue<string>());
    }
}
