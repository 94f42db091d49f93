using LlmProxy.Metering;
using Microsoft.Data.Sqlite;

namespace LlmProxy.Tests.Metering;

public sealed class SqliteUsageStoreTests : IDisposable
{
    private readonly TempDirectory _directory = new();
    private readonly SqliteUsageStore _store;

    public SqliteUsageStoreTests()
    {
        _store = new SqliteUsageStore(Path.Combine(_directory.Path, "data", SqliteUsageStore.FileName));
    }

    public void Dispose()
    {
        _store.Dispose();
        _directory.Dispose();
    }

    private async Task<List<UsageRecord>> QueryAsync(UsageQuery query)
    {
        var records = new List<UsageRecord>();
        await foreach (var record in _store.QueryAsync(query, CancellationToken.None))
        {
            records.Add(record);
        }
        return records;
    }

    private static UsageQuery Everything(string tenant = "acme") => new(tenant, DateTimeOffset.MinValue.AddYears(1), DateTimeOffset.MaxValue.AddYears(-1));

    [Fact]
    public async Task WriteAsync_SameRecordTwice_StoredOnce()
    {
        var records = Enumerable.Range(0, 10).Select(i => MeteringTestData.Record(i)).ToArray();

        await _store.WriteAsync(records, CancellationToken.None);
        await _store.WriteAsync(records[5..], CancellationToken.None);

        Assert.Equal(10, (await QueryAsync(Everything())).Count);
    }

    [Fact]
    public async Task WriteAsync_SameRequestIdAtAnotherTime_IsAnotherRecord()
    {
        // A client reusing x-request-id still gets one record per request.
        await _store.WriteAsync([MeteringTestData.Record(1), MeteringTestData.Record(1) with { Timestamp = MeteringTestData.Start.AddMinutes(5) }], CancellationToken.None);

        Assert.Equal(2, (await QueryAsync(Everything())).Count);
    }

    [Fact]
    public async Task QueryAsync_RoundTripsEveryField()
    {
        var full = MeteringTestData.Record(1, agent: "bot", cost: 0.00000015m) with
        {
            Timestamp = MeteringTestData.Start.AddTicks(1234567),
            Streamed = true,
            CacheHit = true,
            Status = 502,
            ErrorType = "upstream_error",
            ClientDisconnected = true,
            CachedTokens = 40,
            TokensEstimated = true,
            TimeToFirstTokenMs = 12.25,
        };
        var sparse = new UsageRecord { RequestId = "r2", Timestamp = MeteringTestData.Start, Tenant = "acme", KeyId = "k", Status = 400, CostUsd = null };

        await _store.WriteAsync([full, sparse], CancellationToken.None);
        var back = await QueryAsync(Everything());

        Assert.Equal(full, back.Single(r => r.RequestId == full.RequestId));
        Assert.Equal(sparse, back.Single(r => r.RequestId == sparse.RequestId));
    }

    [Fact]
    public async Task QueryAsync_FiltersByTenantRangeAgentAndModel()
    {
        await _store.WriteAsync(
        [
            MeteringTestData.Record(0, at: MeteringTestData.Start, agent: "a1"),
            MeteringTestData.Record(1, at: MeteringTestData.Start.AddHours(1), agent: "a2", model: "gpt-4o-mini"),
            MeteringTestData.Record(2, at: MeteringTestData.Start.AddHours(2), agent: "a1"),
            MeteringTestData.Record(3, tenant: "other", at: MeteringTestData.Start.AddHours(1), agent: "a1"),
        ], CancellationToken.None);

        // From inclusive, to exclusive.
        var range = await QueryAsync(new UsageQuery("acme", MeteringTestData.Start, MeteringTestData.Start.AddHours(2)));
        Assert.Equal(["req_000000", "req_000001"], range.Select(r => r.RequestId).Order(StringComparer.Ordinal));

        var agent = await QueryAsync(Everything() with { Agent = "a1" });
        Assert.Equal(["req_000000", "req_000002"], agent.Select(r => r.RequestId).Order(StringComparer.Ordinal));

        var model = await QueryAsync(Everything() with { Model = "gpt-4o-mini" });
        Assert.Equal("req_000001", Assert.Single(model).RequestId);

        Assert.Equal("req_000003", Assert.Single(await QueryAsync(Everything("other"))).RequestId);
    }

    [Fact]
    public async Task InitializeAsync_WalModeAndTheTenantAndAgentIndexes()
    {
        await _store.InitializeAsync(CancellationToken.None);

        await using var connection = new SqliteConnection($"Data Source={_store.DatabasePath}");
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var mode = connection.CreateCommand();
        mode.CommandText = "PRAGMA journal_mode;";
        Assert.Equal("wal", (string)(await mode.ExecuteScalarAsync(TestContext.Current.CancellationToken))!);
        await using var indexes = connection.CreateCommand();
        indexes.CommandText = "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'usage_records' AND sql IS NOT NULL ORDER BY name";
        var sql = new List<string>();
        await using (var reader = await indexes.ExecuteReaderAsync(TestContext.Current.CancellationToken))
        {
            while (await reader.ReadAsync(TestContext.Current.CancellationToken))
            {
                sql.Add(reader.GetString(0));
            }
        }
        Assert.Contains(sql, s => s.Contains("(tenant, agent, ts)", StringComparison.Ordinal));
        Assert.Contains(sql, s => s.Contains("(tenant, ts)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task QueryAsync_UsesTheTenantTimeIndex()
    {
        await _store.InitializeAsync(CancellationToken.None);
        await using var connection = new SqliteConnection($"Data Source={_store.DatabasePath}");
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var plan = connection.CreateCommand();
        plan.CommandText = "EXPLAIN QUERY PLAN SELECT * FROM usage_records WHERE tenant = 'a' AND ts >= 'x' AND ts < 'y'";
        await using var reader = await plan.ExecuteReaderAsync(TestContext.Current.CancellationToken);
        var steps = new List<string>();
        while (await reader.ReadAsync(TestContext.Current.CancellationToken))
        {
            steps.Add(reader.GetString(3));
        }
        Assert.Contains(steps, s => s.Contains("ix_usage_tenant_ts", StringComparison.Ordinal));
    }

    [Fact]
    public async Task WriteAsync_ExactDecimalCosts_SumExactly()
    {
        var records = Enumerable.Range(0, 1000).Select(i => MeteringTestData.Record(i, cost: 0.00000015m)).ToArray();
        await _store.WriteAsync(records, CancellationToken.None);

        Assert.Equal(0.00015m, (await QueryAsync(Everything())).Sum(r => r.CostUsd!.Value));
    }
}
