using LlmProxy.Metering;

namespace LlmProxy.Tests.Metering;

public sealed class UsageSpillFileTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    private UsageSpillFile Create() => new(_directory.Path, MeteringTestData.Log<UsageSpillFile>());

    private static UsageRecord[] Records(int from, int count) => Enumerable.Range(from, count).Select(i => MeteringTestData.Record(i)).ToArray();

    [Fact]
    public async Task ReplayAsync_AppendedRecords_ComeBackInBatchesAndTheFilesAreRemoved()
    {
        var spill = Create();
        spill.Append(Records(0, 25));
        spill.Append(Records(25, 10));
        var batches = new List<IReadOnlyList<UsageRecord>>();

        var done = await spill.ReplayAsync((batch, _) => { batches.Add(batch.ToArray()); return Task.FromResult(true); }, 10, CancellationToken.None);

        Assert.True(done);
        Assert.Equal([10, 10, 10, 5], batches.Select(b => b.Count));
        Assert.Equal(Records(0, 35), batches.SelectMany(b => b));
        Assert.False(spill.HasRecords);
        Assert.Empty(Directory.GetFiles(_directory.Path));
    }

    [Fact]
    public async Task ReplayAsync_RecordRoundTrip_KeepsEveryField()
    {
        var spill = Create();
        var record = MeteringTestData.Record(1, agent: "agent-ß", cost: 0.00000015m) with
        {
            Timestamp = new DateTimeOffset(2026, 11, 20, 12, 0, 0, TimeSpan.Zero).AddTicks(1234567),
            CacheHit = true,
            Streamed = true,
            TokensEstimated = true,
            ClientDisconnected = true,
            ErrorType = "client_disconnected",
            TimeToFirstTokenMs = 12.5,
            CachedTokens = 7,
        };
        spill.Append([record]);
        UsageRecord? back = null;

        await spill.ReplayAsync((batch, _) => { back = batch.Single(); return Task.FromResult(true); }, 10, CancellationToken.None);

        Assert.Equal(record, back);
    }

    [Fact]
    public async Task ReplayAsync_WriteFails_KeepsTheRestAndResumesAfterTheLastLandedBatch()
    {
        var spill = Create();
        spill.Append(Records(0, 30));
        var landed = new List<UsageRecord>();
        var calls = 0;

        var done = await spill.ReplayAsync((batch, _) =>
        {
            if (++calls == 2)
            {
                return Task.FromResult(false);
            }
            landed.AddRange(batch);
            return Task.FromResult(true);
        }, 10, CancellationToken.None);

        Assert.False(done);
        Assert.True(spill.HasRecords);
        Assert.Equal(10, landed.Count);

        done = await spill.ReplayAsync((batch, _) => { landed.AddRange(batch); return Task.FromResult(true); }, 10, CancellationToken.None);

        Assert.True(done);
        Assert.Equal(Records(0, 30), landed);
    }

    [Fact]
    public async Task ReplayAsync_AfterRestart_ReadsTheFilesOfTheEarlierProcess()
    {
        Create().Append(Records(0, 5));
        var landed = new List<UsageRecord>();

        var restarted = Create();
        Assert.True(restarted.HasRecords);
        await restarted.ReplayAsync((batch, _) => { landed.AddRange(batch); return Task.FromResult(true); }, 100, CancellationToken.None);

        Assert.Equal(5, landed.Count);
    }

    [Fact]
    public async Task ReplayAsync_RecordsSpilledDuringTheReplay_AreReplayedToo()
    {
        var spill = Create();
        spill.Append(Records(0, 3));
        var landed = new List<UsageRecord>();

        await spill.ReplayAsync((batch, _) =>
        {
            if (landed.Count == 0)
            {
                spill.Append(Records(3, 2));
            }
            landed.AddRange(batch);
            return Task.FromResult(true);
        }, 100, CancellationToken.None);

        Assert.Equal(Records(0, 5), landed);
        Assert.False(spill.HasRecords);
    }

    [Fact]
    public async Task Append_AfterACrashMidLine_StartsOnANewLineAndLosesOnlyThePartialRecord()
    {
        Create().Append(Records(0, 2));
        var path = Path.Combine(_directory.Path, UsageSpillFile.FileName);
        await File.AppendAllTextAsync(path, """{"request_id":"req_torn","timest""", TestContext.Current.CancellationToken);

        var restarted = Create();
        restarted.Append(Records(2, 1));
        var landed = new List<UsageRecord>();
        await restarted.ReplayAsync((batch, _) => { landed.AddRange(batch); return Task.FromResult(true); }, 100, CancellationToken.None);

        Assert.Equal(Records(0, 3), landed);
    }
}
