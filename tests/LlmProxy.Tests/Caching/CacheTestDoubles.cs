using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Text;
using System.Text.Json.Nodes;
using LlmProxy.Caching;
using LlmProxy.Pipeline;
using Microsoft.Extensions.DependencyInjection;

namespace LlmProxy.Tests.Caching;

/// <summary>A store that records what it is asked and can be told to fail or to be slow.</summary>
internal sealed class RecordingStore : IResponseCacheStore
{
    public ConcurrentDictionary<string, byte[]> Entries { get; } = new();
    public ConcurrentQueue<(string Key, TimeSpan Ttl)> Sets { get; } = new();
    public int Gets;
    public bool FailGets;
    public bool FailSets;

    public ValueTask<byte[]?> GetAsync(string key, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref Gets);
        if (FailGets)
        {
            throw new InvalidOperationException("store down");
        }
        return ValueTask.FromResult(Entries.TryGetValue(key, out var value) ? value : null);
    }

    public ValueTask SetAsync(string key, byte[] value, TimeSpan validFor, CancellationToken cancellationToken)
    {
        Sets.Enqueue((key, validFor));
        if (FailSets)
        {
            throw new InvalidOperationException("store down");
        }
        Entries[key] = value;
        return ValueTask.CompletedTask;
    }
}

/// <summary>Stands in for the upstream dispatcher: answers like an OpenAI upstream does through the gateway, telling the observers.</summary>
internal sealed class FakeUpstream
{
    private int _calls;

    public int Calls => Volatile.Read(ref _calls);
    public TimeSpan Delay { get; set; }
    public bool Fail { get; set; }
    public bool CutStreamShort { get; set; }
    public TaskCompletionSource? Gate { get; set; }

    public async Task InvokeAsync(ChatContext chat)
    {
        var n = Interlocked.Increment(ref _calls);
        if (Gate is { } gate)
        {
            await gate.Task.WaitAsync(chat.HttpContext.RequestAborted);
        }
        if (Delay > TimeSpan.Zero)
        {
            await Task.Delay(Delay, chat.HttpContext.RequestAborted);
        }
        var response = chat.HttpContext.Response;
        if (Fail)
        {
            chat.ErrorCode = "upstream_error";
            response.StatusCode = StatusCodes.Status502BadGateway;
            await response.WriteAsync("""{"error":{"message":"boom","type":"upstream_error"}}""");
            return;
        }
        chat.Usage = CacheTestData.Usage;
        var content = $"answer {n}";
        if (chat.Request.Stream)
        {
            response.StatusCode = StatusCodes.Status200OK;
            var chunks = CacheTestData.TextChunks(content).ToList();
            if (CutStreamShort)
            {
                chunks.RemoveAt(chunks.Count - 1);
            }
            foreach (var chunk in chunks)
            {
                foreach (var observer in chat.ResponseObservers)
                {
                    observer.OnChunk(chunk);
                }
                await response.WriteAsync("data: " + chunk.ToJsonString() + "\n\n");
            }
            foreach (var observer in chat.ResponseObservers)
            {
                observer.OnStreamEnd(completed: !CutStreamShort);
            }
            if (CutStreamShort)
            {
                chat.ErrorCode = "upstream_stream_truncated";
            }
            return;
        }
        var body = (JsonObject)JsonNode.Parse(CacheTestData.Completion)!;
        body["choices"]![0]!["message"]!["content"] = content;
        var bytes = Encoding.UTF8.GetBytes(body.ToJsonString());
        foreach (var observer in chat.ResponseObservers)
        {
            observer.OnResponse(bytes);
        }
        response.StatusCode = StatusCodes.Status200OK;
        await response.Body.WriteAsync(bytes);
    }
}

/// <summary>Collects the measurements of one <see cref="IMeterFactory"/>'s <c>LlmProxy</c> meter.</summary>
internal sealed class CacheMetricsListener : IDisposable
{
    private readonly MeterListener _listener = new();

    public CacheMetricsListener(IMeterFactory factory)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == "LlmProxy" && ReferenceEquals(instrument.Meter.Scope, factory))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.Start();
    }

    public ConcurrentQueue<(string Instrument, double Value, Dictionary<string, string?> Tags)> Measurements { get; } = new();

    public double Sum(string instrument, params (string Key, string Value)[] tags) =>
        Measurements.Where(m => m.Instrument == instrument && tags.All(t => m.Tags.TryGetValue(t.Key, out var v) && v == t.Value)).Sum(m => m.Value);

    public int Count(string instrument) => Measurements.Count(m => m.Instrument == instrument);

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var dictionary = new Dictionary<string, string?>();
        foreach (var tag in tags)
        {
            dictionary[tag.Key] = tag.Value?.ToString();
        }
        Measurements.Enqueue((instrument.Name, value, dictionary));
    }

    public void Dispose() => _listener.Dispose();
}

internal static class TestMeterFactory
{
    public static IMeterFactory Create() => new ServiceCollection().AddMetrics().BuildServiceProvider().GetRequiredService<IMeterFactory>();
}
