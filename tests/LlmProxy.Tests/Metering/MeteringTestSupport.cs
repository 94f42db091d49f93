using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using LlmProxy.Metering;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LlmProxy.Tests.Metering;

/// <summary>An in-memory usage store that can be made to fail, keyed like the real ones (idempotent).</summary>
internal sealed class FakeUsageStore : IUsageStore
{
    private readonly ConcurrentDictionary<(string, DateTimeOffset), UsageRecord> _records = new();
    private readonly Lock _gate = new();
    private readonly List<(int Calls, TaskCompletionSource Signal)> _waiters = [];
    private int _writeCalls;
    private int _initializeCalls;

    public string Name => "fake";

    /// <summary>While true, every write throws (after writing <see cref="PartialWriteCount"/> records of the batch).</summary>
    public volatile bool Down;

    /// <summary>Makes the write call with this (1-based) number fail as if the store were down.</summary>
    public Func<int, bool>? FailCall { get; set; }

    /// <summary>Records a failing write still lands before it throws (a partial batch).</summary>
    public int PartialWriteCount { get; set; }

    /// <summary>Every record written, including duplicates of a key (a store that was not idempotent would keep them all).</summary>
    public ConcurrentQueue<UsageRecord> Writes { get; } = new();

    public IReadOnlyCollection<UsageRecord> Records => (IReadOnlyCollection<UsageRecord>)_records.Values;

    public int WriteCalls => Volatile.Read(ref _writeCalls);

    /// <summary>Initializations attempted (counted after the outcome is decided).</summary>
    public int InitializeCalls => Volatile.Read(ref _initializeCalls);

    public Task InitializeAsync(CancellationToken cancellationToken)
    {
        var fail = Down;
        Interlocked.Increment(ref _initializeCalls);
        return fail ? Task.FromException(new IOException("store down")) : Task.CompletedTask;
    }

    public Task WriteAsync(IReadOnlyList<UsageRecord> records, CancellationToken cancellationToken)
    {
        try
        {
            if (Down || FailCall?.Invoke(WriteCalls + 1) == true)
            {
                foreach (var record in records.Take(PartialWriteCount))
                {
                    Land(record);
                }
                return Task.FromException(new IOException("store down"));
            }
            foreach (var record in records)
            {
                Land(record);
            }
            return Task.CompletedTask;
        }
        finally
        {
            var calls = Interlocked.Increment(ref _writeCalls);
            lock (_gate)
            {
                foreach (var waiter in _waiters.Where(w => w.Calls <= calls).ToList())
                {
                    waiter.Signal.TrySetResult();
                    _waiters.Remove(waiter);
                }
            }
        }
    }

    private void Land(UsageRecord record)
    {
        Writes.Enqueue(record);
        _records.TryAdd(record.Key, record);
    }

    /// <summary>Completes once the store has been asked to write <paramref name="calls"/> times.</summary>
    public Task WaitForWriteCallsAsync(int calls)
    {
        lock (_gate)
        {
            if (WriteCalls >= calls)
            {
                return Task.CompletedTask;
            }
            var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((calls, signal));
            // A hang is a failure, not a stuck test run.
            return signal.Task.WaitAsync(TimeSpan.FromSeconds(10));
        }
    }

    public async IAsyncEnumerable<UsageRecord> QueryAsync(UsageQuery query, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.CompletedTask;
        foreach (var record in _records.Values.Where(query.Matches))
        {
            yield return record;
        }
    }

    public Task CheckHealthAsync(CancellationToken cancellationToken) =>
        Down ? Task.FromException(new IOException("store down")) : Task.CompletedTask;
}

internal sealed class TestHostEnvironment(string contentRoot) : IHostEnvironment
{
    public string EnvironmentName { get; set; } = "Testing";
    public string ApplicationName { get; set; } = "LlmProxy.Tests";
    public string ContentRootPath { get; set; } = contentRoot;
    public IFileProvider ContentRootFileProvider { get; set; } = new NullFileProvider();
}

/// <summary>A temporary directory removed at the end of a test.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "llmproxy-metering-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        // A background writer finishing its last step can add a file while the tree is being removed: try again.
        for (var attempt = 0; attempt < 5 && Directory.Exists(Path); attempt++)
        {
            try
            {
                Directory.Delete(Path, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}

internal static class MeteringTestData
{
    public static readonly DateTimeOffset Start = new(2026, 11, 20, 12, 0, 0, TimeSpan.Zero);

    public static MeteringMetrics Metrics()
    {
        var factory = new ServiceCollection().AddMetrics().BuildServiceProvider().GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        return new(factory, new LlmProxy.Telemetry.GatewayMetrics(factory));
    }

    public static UsageRecord Record(int i, string tenant = "acme", DateTimeOffset? at = null, string? agent = null, string model = "gpt-4o",
        decimal? cost = 0.001m, int prompt = 100, int completion = 50) => new()
    {
        RequestId = $"req_{i:D6}",
        Timestamp = at ?? Start.AddSeconds(i),
        Tenant = tenant,
        KeyId = "k1",
        Agent = agent,
        RequestedModel = model,
        Provider = "openai",
        Deployment = "d1",
        UpstreamModel = model,
        Attempts = 1,
        Status = 200,
        PromptTokens = prompt,
        CompletionTokens = completion,
        TotalTokens = prompt + completion,
        CostUsd = cost,
        LatencyMs = 10 + i,
    };

    public static IOptions<MeteringOptions> Options(Action<MeteringOptions>? configure = null)
    {
        var options = new MeteringOptions();
        configure?.Invoke(options);
        return Microsoft.Extensions.Options.Options.Create(options);
    }

    public static ILogger<T> Log<T>() => NullLogger<T>.Instance;
}
