using BenchmarkDotNet.Attributes;
using LlmProxy.Caching;
using LlmProxy.OpenAi;
using LlmProxy.Providers;
using LlmProxy.Providers.OpenAi;
using LlmProxy.Routing;
using Microsoft.AspNetCore.Http;

namespace LlmProxy.Benchmarks.Micro;

/// <summary>The per-request work of a non-streamed chat completion: parse and validate, cache key, upstream body, response.</summary>
[MemoryDiagnoser]
public class RequestPathBenchmarks
{
    private ChatRequest _small = null!;
    private ChatRequest _typical = null!;
    private Deployment _deployment = null!;
    private OpenAiTranslator _translator = null!;
    private DefaultHttpContext _http = null!;
    private MemoryStream _body = null!;

    [GlobalSetup]
    public void Setup()
    {
        _small = HotPathData.Parse(HotPathData.SmallRequest);
        _typical = HotPathData.Parse(HotPathData.TypicalRequest);
        _deployment = HotPathData.OpenAiDeployment();
        _translator = new OpenAiTranslator(_small, _deployment);
        _body = new MemoryStream(HotPathData.TypicalRequest, writable: false);
        _http = new DefaultHttpContext();
        _http.Request.Body = _body;
        _http.Request.ContentLength = HotPathData.TypicalRequest.Length;
    }

    [Benchmark(Description = "read request body (2 KB, Content-Length)")]
    public async Task<int> ReadBody()
    {
        _body.Position = 0;
        var (body, _) = await RequestBodyReader.ReadAsync(_http, 10 * 1024 * 1024);
        return body.Length;
    }

    [Benchmark(Description = "parse+validate, small request (0.1 KB)")]
    public ChatRequest? ParseSmall() => ChatRequestParser.TryParse(HotPathData.SmallRequest, out var request, out _) ? request : null;

    [Benchmark(Description = "parse+validate, typical request (2 KB)")]
    public ChatRequest? ParseTypical() => ChatRequestParser.TryParse(HotPathData.TypicalRequest, out var request, out _) ? request : null;

    [Benchmark(Description = "text check alone, typical request (2 KB)")]
    public bool TextCheckTypical() => JsonTextValidator.Validate(HotPathData.TypicalRequest) is null;

    [Benchmark(Description = "text check alone, 32 KB prompt with escapes and non-ASCII")]
    public bool TextCheckLarge() => JsonTextValidator.Validate(LargeRequest) is null;

    [Benchmark(Description = "parse+validate, 32 KB prompt with escapes and non-ASCII")]
    public ChatRequest? ParseLarge() => ChatRequestParser.TryParse(LargeRequest, out var request, out _) ? request : null;

    /// <summary>A long prompt of mixed text: escapes (<c>\n</c>, <c>\"</c>, <c>\u00e9</c>) and raw UTF-8 (é, 中文, 😀).</summary>
    private static readonly byte[] LargeRequest = System.Text.Encoding.UTF8.GetBytes(
        """{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are helpful."},{"role":"user","content":" """
        + string.Concat(Enumerable.Repeat("""Line with \"quotes\", caf\u00e9, café, 中文 and 😀 emoji.\n""", 32 * 1024 / 64))
        + "\"}],\"temperature\":0.2}");

    [Benchmark(Description = "cache key, small request")]
    public string CacheKeySmall() => ResponseCacheKey.Create("acme", "gpt-4o-mini", _small.Body);

    [Benchmark(Description = "cache key, typical request")]
    public string CacheKeyTypical() => ResponseCacheKey.Create("acme", "gpt-4o-mini", _typical.Body);

    [Benchmark(Description = "upstream body (OpenAI), typical request")]
    public UpstreamRequest TranslateRequestTypical() => new OpenAiTranslator(_typical, _deployment).TranslateRequest();

    [Benchmark(Description = "client body from upstream completion (OpenAI)")]
    public TranslatedResponse TranslateResponse() => _translator.TranslateResponse(HotPathData.Completion);

    [Benchmark(Description = "client body from upstream completion (OpenAI), captured and made a cache entry")]
    public byte[] TranslateResponseCaptured()
    {
        var translated = _translator.TranslateResponse(HotPathData.Completion);
        var capture = new LlmProxy.Caching.ResponseCapture(1024 * 1024);
        capture.OnResponse(translated.Body);
        var completion = capture.TryGetCompletion(streamed: false, translated.Usage) ?? throw new InvalidOperationException(capture.RejectionReason);
        return LlmProxy.Caching.CacheEntry.Create(completion, DateTimeOffset.UnixEpoch);
    }
}
