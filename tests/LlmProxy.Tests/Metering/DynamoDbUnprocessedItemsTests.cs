using System.Collections.Concurrent;
using Amazon.DynamoDBv2;
using Amazon.DynamoDBv2.Model;
using Amazon.Runtime;
using LlmProxy.Metering;

namespace LlmProxy.Tests.Metering;

/// <summary>
/// BatchWriteItem may accept only part of a batch and return the rest as UnprocessedItems (throttling, partition limits).
/// dynalite never does, so these tests use a client whose BatchWriteItem answers as DynamoDB can; the store's behaviour
/// against a real DynamoDB-compatible server is covered by the dynalite integration tests.
/// </summary>
public sealed class DynamoDbUnprocessedItemsTests
{
    private static readonly DynamoDbUsageStoreOptions StoreOptions = new() { TableName = "llmproxy-usage" };

    [Fact]
    public async Task WriteAsync_SomeItemsUnprocessedThenNone_ResendsExactlyThoseWithBackoffAndAllLand()
    {
        var records = Enumerable.Range(0, 30).Select(i => MeteringTestData.Record(i)).ToArray();
        // First call: every third item of the first 25 left over; second call: every other one of those; then all taken.
        using var client = new PartialBatchClient((call, items) => call switch
        {
            1 => items.Where((_, i) => i % 3 == 0).ToList(),
            2 => items.Where((_, i) => i % 2 == 0).ToList(),
            _ => new List<WriteRequest>(),
        });
        var delays = new DelayRecorder();
        using var store = new DynamoDbUsageStore(client, StoreOptions, delays);

        await store.WriteAsync(records, CancellationToken.None);

        // 25 in the first chunk: 9 unprocessed, then 5 of those 9; then the 5 of the second chunk.
        Assert.Equal(new[] { 25, 9, 5, 5 }, client.Calls.Select(c => c.Count));
        Assert.Equal(client.Unprocessed[0].Select(Key), client.Calls[1].Select(Key));
        Assert.Equal(client.Unprocessed[1].Select(Key), client.Calls[2].Select(Key));
        // Each record is sent once, and once more for each time it came back unprocessed; none is lost.
        foreach (var record in records)
        {
            var key = DynamoDbUsageStore.SortKeyOf(record);
            var unprocessed = client.Unprocessed.Count(u => u.Any(w => Key(w) == key));
            Assert.Equal(1 + unprocessed, client.Puts[key]);
        }
        Assert.Equal(records.Select(DynamoDbUsageStore.SortKeyOf).Order(StringComparer.Ordinal), client.Table.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(records, client.Table.Values.Select(DynamoDbUsageStore.FromItem).OrderBy(r => r.RequestId, StringComparer.Ordinal));
        Assert.Equal(new[] { TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(100) }, delays.Requested);
    }

    [Fact]
    public async Task WriteAsync_ItemsAlwaysUnprocessed_ThrowsAfterEightRetriesWithCappedBackoff()
    {
        // The first call takes one of the two; the other comes back unprocessed every time.
        using var client = new PartialBatchClient((call, items) => call == 1 ? items.Skip(1).ToList() : items.ToList());
        var delays = new DelayRecorder();
        using var store = new DynamoDbUsageStore(client, StoreOptions, delays);

        var error = await Assert.ThrowsAsync<ProvisionedThroughputExceededException>(
            () => store.WriteAsync([MeteringTestData.Record(1), MeteringTestData.Record(2)], CancellationToken.None));

        Assert.Contains("1 usage record(s) unprocessed after 9 attempts", error.Message, StringComparison.Ordinal);
        Assert.Equal(9, client.Calls.Count);
        Assert.Equal(
            new[] { 50, 100, 200, 400, 800, 1600, 2000, 2000 }.Select(ms => TimeSpan.FromMilliseconds(ms)),
            delays.Requested);
    }

    [Fact]
    public async Task LedgerWriter_StoreLeavesItemsUnprocessed_KeepsTheRecordsAndLandsThemWhenDynamoDbCatchesUp()
    {
        using var directory = new TempDirectory();
        var throttled = true;
        // While throttled, DynamoDB takes 3 of the batch and then nothing more.
        using var client = new PartialBatchClient((call, items) => !Volatile.Read(ref throttled) ? new List<WriteRequest>() : call == 1 ? items.Skip(3).ToList() : items.ToList());
        using var store = new DynamoDbUsageStore(client, StoreOptions, new DelayRecorder());
        var time = new FakeTimeProvider(MeteringTestData.Start);
        var options = MeteringTestData.Options(o => o.RetryInitialDelay = TimeSpan.FromSeconds(1));
        var metrics = MeteringTestData.Metrics();
        var spill = new UsageSpillFile(directory.Path, MeteringTestData.Log<UsageSpillFile>());
        var ledger = new UsageLedger(options, spill, metrics, MeteringTestData.Log<UsageLedger>());
        var writer = new UsageLedgerWriter(ledger, store, spill, options, time, metrics, MeteringTestData.Log<UsageLedgerWriter>());
        for (var i = 0; i < 10; i++)
        {
            ledger.Append(MeteringTestData.Record(i));
        }

        await writer.PumpAsync(CancellationToken.None);

        // The store gave up on 7 of them after its retries; the batch failed as a whole and stays with the writer.
        Assert.True(writer.StoreState.Down);
        Assert.Equal(10, writer.Pending);
        Assert.Equal(3, client.Table.Count);

        Volatile.Write(ref throttled, false);
        time.Advance(TimeSpan.FromSeconds(1));
        await writer.PumpAsync(CancellationToken.None);

        Assert.False(writer.StoreState.Down);
        Assert.True(writer.IsDrained);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"req_{i:D6}"), client.Table.Values.Select(i => i["request_id"].S).Order(StringComparer.Ordinal));
    }

    private static string Key(WriteRequest request) => request.PutRequest.Item[DynamoDbUsageStore.SortKey].S;

    /// <summary>
    /// A DynamoDB client whose BatchWriteItem stores what it accepts (by key, as DynamoDB does) and returns as unprocessed
    /// whatever <c>leaveUnprocessed(call number, items of the call)</c> picks. No other operation is used by these tests
    /// except DescribeTable, which reports the table.
    /// </summary>
    private sealed class PartialBatchClient(Func<int, List<WriteRequest>, List<WriteRequest>> leaveUnprocessed)
        : AmazonDynamoDBClient(new BasicAWSCredentials("test", "test"), new AmazonDynamoDBConfig { ServiceURL = "http://127.0.0.1:1" })
    {
        public List<List<WriteRequest>> Calls { get; } = [];
        public List<List<WriteRequest>> Unprocessed { get; } = [];
        public ConcurrentDictionary<string, Dictionary<string, AttributeValue>> Table { get; } = new(StringComparer.Ordinal);
        public ConcurrentDictionary<string, int> Puts { get; } = new(StringComparer.Ordinal);

        public override Task<BatchWriteItemResponse> BatchWriteItemAsync(BatchWriteItemRequest request, CancellationToken cancellationToken = default)
        {
            var (table, items) = request.RequestItems.Single();
            Assert.Equal(StoreOptions.TableName, table);
            Assert.InRange(items.Count, 1, 25); // DynamoDB's limit per call
            Calls.Add([.. items]);
            var unprocessed = leaveUnprocessed(Calls.Count, items);
            Unprocessed.Add(unprocessed);
            foreach (var item in items)
            {
                var key = Key(item);
                Puts.AddOrUpdate(key, 1, (_, n) => n + 1);
                if (!unprocessed.Contains(item))
                {
                    Table[key] = item.PutRequest.Item;
                }
            }
            return Task.FromResult(new BatchWriteItemResponse
            {
                UnprocessedItems = unprocessed.Count == 0 ? new Dictionary<string, List<WriteRequest>>() : new Dictionary<string, List<WriteRequest>> { [table] = unprocessed },
            });
        }

        public override Task<DescribeTableResponse> DescribeTableAsync(DescribeTableRequest request, CancellationToken cancellationToken = default) =>
            Task.FromResult(new DescribeTableResponse { Table = new TableDescription { TableName = request.TableName, TableStatus = TableStatus.ACTIVE } });
    }

    /// <summary>The suite's fake clock, moved forward as soon as a timer is set (so every delay passes at once); it remembers the delays asked for.</summary>
    private sealed class DelayRecorder() : FakeTimeProvider(MeteringTestData.Start)
    {
        private readonly ConcurrentQueue<TimeSpan> _requested = new();

        public IReadOnlyList<TimeSpan> Requested => [.. _requested];

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            _requested.Enqueue(dueTime);
            var timer = base.CreateTimer(callback, state, dueTime, period);
            ThreadPool.QueueUserWorkItem(_ => Advance(dueTime));
            return timer;
        }
    }
}
