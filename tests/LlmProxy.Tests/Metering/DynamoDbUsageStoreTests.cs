using LlmProxy.Metering;

namespace LlmProxy.Tests.Metering;

public sealed class DynamoDbUsageStoreTests
{
    [Fact]
    public void ToItem_KeysFollowTheTableDesign()
    {
        var record = MeteringTestData.Record(7, agent: "bot") with { Timestamp = MeteringTestData.Start.AddTicks(5) };

        var item = DynamoDbUsageStore.ToItem(record);

        Assert.Equal("TENANT#acme", item["PK"].S);
        Assert.Equal("2026-11-20T12:00:00.0000005Z#req_000007", item["SK"].S);
        Assert.Equal("AGENT#acme#bot", item["GSI1PK"].S);
        Assert.Equal(item["SK"].S, item["GSI1SK"].S);
        Assert.Equal("0.001", item["cost_usd"].N);
    }

    [Fact]
    public void ToItem_NoAgentOrCost_SparseIndexAndNoCostAttribute()
    {
        var item = DynamoDbUsageStore.ToItem(MeteringTestData.Record(1, cost: null));

        Assert.False(item.ContainsKey("GSI1PK"));
        Assert.False(item.ContainsKey("GSI1SK"));
        Assert.False(item.ContainsKey("cost_usd"));
    }

    [Fact]
    public void FromItem_RoundTripsEveryField()
    {
        var record = MeteringTestData.Record(3, agent: "bot", cost: 0.00000015m) with
        {
            Timestamp = MeteringTestData.Start.AddTicks(1234567),
            Streamed = true,
            CacheHit = true,
            Status = 200,
            ErrorType = "client_disconnected",
            ClientDisconnected = true,
            CachedTokens = 3,
            TokensEstimated = true,
            TimeToFirstTokenMs = 1.5,
            LatencyMs = 1234.567,
        };

        Assert.Equal(record, DynamoDbUsageStore.FromItem(DynamoDbUsageStore.ToItem(record)));
    }

    [Fact]
    public void SortKeys_TextOrderIsTimeOrder()
    {
        var earlier = DynamoDbUsageStore.SortKeyOf(MeteringTestData.Record(9, at: MeteringTestData.Start.AddTicks(9)));
        var later = DynamoDbUsageStore.SortKeyOf(MeteringTestData.Record(1, at: MeteringTestData.Start.AddTicks(10)));

        Assert.True(string.CompareOrdinal(earlier, later) < 0);
        // A query bound at a record's exact time ("to" is exclusive) sorts before that record's key.
        Assert.True(string.CompareOrdinal(UsageRecord.FormatTimestamp(MeteringTestData.Start.AddTicks(10)), later) < 0);
    }

    [Fact]
    public void Options_InvalidTableName_Reported()
    {
        var options = new MeteringOptions { Store = "dynamodb", DynamoDb = { TableName = "no spaces allowed" } };
        Assert.Contains(options.Validate(), p => p.Contains("TableName", StringComparison.Ordinal));
    }

    [Fact]
    public void Options_UnknownStore_Reported()
    {
        Assert.Contains(new MeteringOptions { Store = "mongo" }.Validate(), p => p.Contains("'mongo'", StringComparison.Ordinal));
        Assert.Empty(new MeteringOptions().Validate());
    }
}
