using BenchmarkDotNet.Attributes;
using LlmProxy.Configuration;
using LlmProxy.Forwarding;
using LlmProxy.OpenAi;
using LlmProxy.Pipeline;
using LlmProxy.Providers;
using LlmProxy.Providers.Bedrock;
using LlmProxy.Providers.OpenAi;
using LlmProxy.Routing;
using LlmProxy.ServerSentEvents;
using LlmProxy.Tenancy;
using Microsoft.AspNetCore.Http;

namespace LlmProxy.Benchmarks.Micro;

/// <summary>
/// One whole streamed response per operation (role chunk, 40 one-word chunks, finish, usage: 43 events), so the
/// figures are per stream; divide by 43 for per event.
/// </summary>
[MemoryDiagnoser]
public class StreamPathBenchmarks
{
    private readonly byte[] _readBuffer = new byte[16 * 1024];
    private ChatRequest _request = null!;
    private Deployment _deployment = null!;
    private ModelRoute _route = null!;
    private TenantIdentity _identity = null!;

    [GlobalSetup]
    public void Setup()
    {
        _request = HotPathData.StreamRequest;
        _deployment = HotPathData.OpenAiDeployment();
        _route = new ModelRoute("gpt-4o-mini", [_deployment], new RetryBudgetOptions());
        _identity = new TenantIdentity(new Tenant("acme", null), "k");
        // A benchmark of a stream that failed half way would measure the wrong thing: check each one completes.
        foreach (var (name, run) in new (string, Func<ClientStreamSink>)[] { ("OpenAI", TranslateOpenAi), ("Bedrock", TranslateBedrock) })
        {
            var output = System.Text.Encoding.UTF8.GetString(run().Output.WrittenSpan);
            if (!output.EndsWith("data: [DONE]\n\n", StringComparison.Ordinal) || output.Contains("\"error\"", StringComparison.Ordinal)
                || output.Split("data: ").Length - 1 != HotPathData.ContentChunks + 3)
            {
                throw new InvalidOperationException($"the {name} stream did not translate cleanly: {output}");
            }
        }
    }

    [Benchmark(Description = "SSE reader: split OpenAI stream into events")]
    public int SseReader()
    {
        var reader = new ServerSentEventReader();
        var events = new int[1];
        reader.Feed(HotPathData.OpenAiStream, events, static (count, _) => count[0]++);
        return events[0];
    }

    [Benchmark(Description = "OpenAI stream translation into the client sink")]
    public int OpenAiStreamTranslation() => TranslateOpenAi().Output.WrittenCount;

    private ClientStreamSink TranslateOpenAi()
    {
        var sink = NewSink();
        var translator = new OpenAiTranslator(_request, _deployment).CreateStreamTranslator();
        translator.Process(HotPathData.OpenAiStream, sink);
        translator.Complete(sink);
        sink.Done();
        return sink;
    }

    [Benchmark(Description = "OpenAI stream translation, cache capture and metering observers, cacheable completion built")]
    public int OpenAiStreamTranslationObserved()
    {
        var chat = new ChatContext(new DefaultHttpContext(), _identity, _request, _route);
        var capture = new LlmProxy.Caching.ResponseCapture(1024 * 1024);
        chat.ResponseObservers.Add(capture);
        chat.ResponseObservers.Add(new LlmProxy.Metering.ResponseUsageObserver(chat));
        var sink = new ClientStreamSink(chat, BearerTokenAuthenticator.FromEnvironment(null));
        var translator = new OpenAiTranslator(_request, _deployment).CreateStreamTranslator();
        translator.Process(HotPathData.OpenAiStream, sink);
        translator.Complete(sink);
        sink.Done();
        return capture.TryGetCompletion(streamed: true, chat.Usage)?.Length ?? throw new InvalidOperationException(capture.RejectionReason);
    }

    [Benchmark(Description = "TranslatingStream: upstream bytes to client bytes (OpenAI)")]
    public async Task<long> TranslatingStreamOpenAi()
    {
        var sink = NewSink();
        var translator = new OpenAiTranslator(_request, _deployment).CreateStreamTranslator();
        await using var stream = new TranslatingStream(new MemoryStream(HotPathData.OpenAiStream, writable: false), translator, sink, "d1", CancellationToken.None);
        long total = 0;
        int read;
        while ((read = await stream.ReadAsync(_readBuffer)) > 0)
        {
            total += read;
        }
        return total;
    }

    [Benchmark(Description = "Bedrock event-stream decoding (frames, CRCs, headers)")]
    public int BedrockDecode()
    {
        var reader = new AwsEventStreamReader();
        var count = 0;
        reader.Feed(HotPathData.BedrockStream, _ => count++);
        return count;
    }

    [Benchmark(Description = "Bedrock ConverseStream translation into the client sink")]
    public int BedrockStreamTranslation() => TranslateBedrock().Output.WrittenCount;

    private ClientStreamSink TranslateBedrock()
    {
        var sink = NewSink();
        var translator = new ConverseStreamTranslator(_request, "bedrock-1", TimeProvider.System);
        translator.Process(HotPathData.BedrockStream, sink);
        translator.Complete(sink);
        sink.Done();
        return sink;
    }

    // A keyless OpenAI-compatible deployment: nothing to redact, as with a local vLLM or Ollama server.
    private ClientStreamSink NewSink() => new(new ChatContext(new DefaultHttpContext(), _identity, _request, _route), BearerTokenAuthenticator.FromEnvironment(null));
}
