using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text;
using Amazon.DynamoDBv2.Model;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Metering;
using LlmProxy.Simulator;

namespace LlmProxy.IntegrationTests.Metering;

/// <summary>The usage store goes away while requests keep coming; when it is back, every record is in it exactly once.</summary>
[Collection(MeteringCollection.Name)]
public sealed class LedgerOutageTests
{
    private const string Key = "sk-tenant-acme-outage-0123";
    private const string Body = """{"model":"chat","messages":[{"role":"user","content":"Hello there"}]}""";

    [Fact]
    public async Task DynaliteKilledMidRunAndRestarted_EveryRecordLandsExactlyOnce()
    {
        const int total = 600;
        await using var dynamo = await DynaliteServer.StartAsync(persistent: true);
        await using var simulator = await SimulatorServer.StartAsync(new SimulatorOptions());
        var table = "usage-outage-" + Guid.NewGuid().ToString("N")[..8];
        await using var metered = await MeteredGateway.StartAsync(new GatewaySettings()
            .Tenant("acme", Key)
            .OpenAi("chat", "sim", simulator.BaseAddress, configure: d => d.Set("UpstreamModel", MeteredGateway.PricedModel))
            .Set("LlmProxy:Metering:BufferCapacity", "50")
            .Set("LlmProxy:Metering:BatchSize", "25"), dynamo, tableName: table);
        using var http = metered.Gateway.CreateClient(Key);
        var completed = 0;
        var killed = new TaskCompletionSource();

        var load = Parallel.ForEachAsync(Enumerable.Range(0, total), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, ct) =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(Body, Encoding.UTF8, "application/json") };
            request.Headers.Add("x-request-id", $"outage-{i:D4}");
            using var response = await http.SendAsync(request, ct);
            Assert.True(response.IsSuccessStatusCode, $"request {i}: {(int)response.StatusCode}");
            if (Interlocked.Increment(ref completed) == 150)
            {
                dynamo.Kill();
                killed.SetResult();
            }
        });

        await killed.Task.WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
        // Requests go on while the store is dead: records are retried, then spilled past the 50-record buffer.
        await WaitUntilAsync(() => Volatile.Read(ref completed) >= 400 && metered.Writer.StoreState.Down, TimeSpan.FromSeconds(60));
        await dynamo.RestartAsync();
        await load;

        var records = await metered.WaitForRecordsAsync("acme", total, TimeSpan.FromSeconds(60));

        Assert.Equal(total, records.Count);
        Assert.Equal(Enumerable.Range(0, total).Select(i => $"outage-{i:D4}"), records.Select(r => r.RequestId).Order(StringComparer.Ordinal));
        Assert.Contains(metered.Gateway.Logs.Lines, l => l.Contains("Usage ledger: store dynamodb failed", StringComparison.Ordinal));
        Assert.Contains(metered.Gateway.Logs.Lines, l => l.Contains("Usage ledger: store dynamodb is back", StringComparison.Ordinal));
        Assert.Contains(metered.Gateway.Logs.Lines, l => l.Contains("spill file", StringComparison.Ordinal) && l.Contains("replayed", StringComparison.Ordinal));

        // The table itself, scanned: one item per request, nothing else.
        using var client = DynamoDbUsageStore.CreateClient(new DynamoDbUsageStoreOptions { ServiceUrl = dynamo.ServiceUrl.ToString(), TableName = table });
        var items = new List<Dictionary<string, AttributeValue>>();
        var scan = new ScanRequest { TableName = table };
        do
        {
            var page = await client.ScanAsync(scan, TestContext.Current.CancellationToken);
            items.AddRange(page.Items ?? []);
            scan.ExclusiveStartKey = page.LastEvaluatedKey is { Count: > 0 } last ? last : null;
        }
        while (scan.ExclusiveStartKey is not null);
        Assert.Equal(total, items.Count);
        Assert.Equal(total, items.Select(i => i["request_id"].S).Distinct().Count());
    }

    [Fact]
    public async Task StoreDownPastTheBuffer_RecordsSpilledThenReplayed_NoneLostNoneDuplicated()
    {
        const int total = 300;
        await using var simulator = await SimulatorServer.StartAsync(new SimulatorOptions());
        var switchable = new SwitchableUsageStore();
        await using var metered = await MeteredGateway.StartAsync(new GatewaySettings()
            .Tenant("acme", Key)
            .OpenAi("chat", "sim", simulator.BaseAddress, configure: d => d.Set("UpstreamModel", MeteredGateway.PricedModel))
            .Set("LlmProxy:Metering:BufferCapacity", "40")
            .Set("LlmProxy:Metering:BatchSize", "20"),
            services: s => s.AddSingleton<IUsageStore>(sp =>
            {
                var options = sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<MeteringOptions>>().Value;
                switchable.Inner = new SqliteUsageStore(Path.Combine(options.DataDirectory, SqliteUsageStore.FileName));
                return switchable;
            }));
        using var http = metered.Gateway.CreateClient(Key);
        switchable.Down = true;

        await Parallel.ForEachAsync(Enumerable.Range(0, total), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, ct) =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(Body, Encoding.UTF8, "application/json") };
            request.Headers.Add("x-request-id", $"spill-{i:D4}");
            using var response = await http.SendAsync(request, ct);
            Assert.True(response.IsSuccessStatusCode);
        });
        var spillPath = Path.Combine(metered.DataDirectory, UsageSpillFile.FileName);
        await WaitUntilAsync(() => metered.Writer.Pending <= 40 && SpilledLines(spillPath) + metered.Writer.Pending == total, TimeSpan.FromSeconds(30));
        var spilled = SpilledLines(spillPath);
        Assert.InRange(spilled, total - 40, total);

        switchable.Down = false;
        var records = await metered.WaitForRecordsAsync("acme", total);

        Assert.Equal(Enumerable.Range(0, total).Select(i => $"spill-{i:D4}"), records.Select(r => r.RequestId).Order(StringComparer.Ordinal));
        Assert.False(File.Exists(spillPath));
        Assert.False(File.Exists(Path.Combine(metered.DataDirectory, UsageSpillFile.ReplayFileName)));
        // Straight from SQLite: no request id twice.
        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(metered.DataDirectory, SqliteUsageStore.FileName)}");
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var count = connection.CreateCommand();
        count.CommandText = "SELECT count(*), count(DISTINCT request_id) FROM usage_records";
        await using var reader = await count.ExecuteReaderAsync(TestContext.Current.CancellationToken);
        Assert.True(await reader.ReadAsync(TestContext.Current.CancellationToken));
        Assert.Equal((total, total), (reader.GetInt32(0), reader.GetInt32(1)));
    }

    [Fact]
    public async Task Shutdown_StoreDown_EveryRecordSpilledAndLandedByTheNextStart()
    {
        const int total = 120;
        await using var simulator = await SimulatorServer.StartAsync(new SimulatorOptions());
        var settings = new GatewaySettings()
            .Tenant("acme", Key)
            .OpenAi("chat", "sim", simulator.BaseAddress, configure: d => d.Set("UpstreamModel", MeteredGateway.PricedModel));
        var switchable = new SwitchableUsageStore { Down = true };
        var first = await MeteredGateway.StartAsync(settings, services: s => s.AddSingleton<IUsageStore>(sp =>
        {
            var options = sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<MeteringOptions>>().Value;
            switchable.Inner = new SqliteUsageStore(Path.Combine(options.DataDirectory, SqliteUsageStore.FileName));
            return switchable;
        }), keepDataDirectory: true);
        using (var http = first.Gateway.CreateClient(Key))
        {
            for (var i = 0; i < total; i++)
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(Body, Encoding.UTF8, "application/json") };
                request.Headers.Add("x-request-id", $"stop-{i:D4}");
                using var response = await http.SendAsync(request, TestContext.Current.CancellationToken);
                Assert.True(response.IsSuccessStatusCode);
            }
        }

        // SIGTERM with the store still down: what was queued or buffered goes to the spill file.
        await first.Gateway.StopAsync();
        var spillPath = Path.Combine(first.DataDirectory, UsageSpillFile.FileName);
        Assert.Equal(total, SpilledLines(spillPath));
        await first.DisposeAsync();

        // The next start, with the store reachable, replays the file.
        await using var second = await MeteredGateway.StartAsync(settings, dataDirectory: first.Root);
        var records = await second.WaitForRecordsAsync("acme", total);

        Assert.Equal(Enumerable.Range(0, total).Select(i => $"stop-{i:D4}"), records.Select(r => r.RequestId).Order(StringComparer.Ordinal));
        Assert.False(File.Exists(spillPath));
    }

    private static int SpilledLines(string path)
    {
        try
        {
            return File.Exists(path) ? File.ReadLines(path).Count(l => l.Length > 0) : 0;
        }
        catch (IOException)
        {
            return -1;
        }
    }

    private static async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout)
    {
        var deadline = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            if (deadline.Elapsed > timeout)
            {
                throw new TimeoutException("condition not reached");
            }
            await Task.Delay(20);
        }
    }

    /// <summary>The real SQLite store behind a switch that makes it fail as an unreachable store would.</summary>
    private sealed class SwitchableUsageStore : IUsageStore
    {
        public volatile bool Down;

        public IUsageStore Inner { get; set; } = null!;

        public string Name => "sqlite";

        public Task InitializeAsync(CancellationToken cancellationToken) => Inner.InitializeAsync(cancellationToken);

        public Task WriteAsync(IReadOnlyList<UsageRecord> records, CancellationToken cancellationToken) =>
            Down ? Task.FromException(new IOException("usage store unreachable (test)")) : Inner.WriteAsync(records, cancellationToken);

        public async IAsyncEnumerable<UsageRecord> QueryAsync(UsageQuery query, [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await foreach (var record in Inner.QueryAsync(query, cancellationToken))
            {
                yield return record;
            }
        }

        public Task CheckHealthAsync(CancellationToken cancellationToken) =>
            Down ? Task.FromException(new IOException("usage store unreachable (test)")) : Inner.CheckHealthAsync(cancellationToken);
    }
}
