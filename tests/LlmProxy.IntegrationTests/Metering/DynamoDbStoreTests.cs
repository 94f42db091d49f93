using Amazon.DynamoDBv2.Model;
using LlmProxy.Metering;
using Microsoft.Extensions.Configuration;

namespace LlmProxy.IntegrationTests.Metering;

/// <summary>The DynamoDB store and the create-usage-table command against a real DynamoDB-compatible server (dynalite).</summary>
[Collection(MeteringCollection.Name)]
public sealed class DynamoDbStoreTests
{
    [Fact]
    public async Task RunAsync_DynamoDb_CreatesTheTableWithItsAgentIndexOnceThenReportsIt()
    {
        await using var dynamo = await DynaliteServer.StartAsync();
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["LlmProxy:Metering:Store"] = "dynamodb",
            ["LlmProxy:Metering:DynamoDb:ServiceUrl"] = dynamo.ServiceUrl.ToString(),
            ["LlmProxy:Metering:DynamoDb:TableName"] = "llmproxy-usage-cmd",
        }).Build();
        var output = new StringWriter();
        var error = new StringWriter();

        Assert.Equal(0, await CreateUsageTableCommand.RunAsync(configuration, AppContext.BaseDirectory, output, error, TestContext.Current.CancellationToken));
        Assert.Contains("Created DynamoDB table 'llmproxy-usage-cmd'", output.ToString(), StringComparison.Ordinal);
        Assert.Equal(0, await CreateUsageTableCommand.RunAsync(configuration, AppContext.BaseDirectory, output, error, TestContext.Current.CancellationToken));
        Assert.Contains("already exists", output.ToString(), StringComparison.Ordinal);

        using var client = DynamoDbUsageStore.CreateClient(new DynamoDbUsageStoreOptions { ServiceUrl = dynamo.ServiceUrl.ToString() });
        var table = (await client.DescribeTableAsync(new DescribeTableRequest { TableName = "llmproxy-usage-cmd" }, TestContext.Current.CancellationToken)).Table;
        Assert.Equal(["PK", "SK"], table.KeySchema.Select(k => k.AttributeName));
        var index = Assert.Single(table.GlobalSecondaryIndexes);
        Assert.Equal("GSI1", index.IndexName);
        Assert.Equal(["GSI1PK", "GSI1SK"], index.KeySchema.Select(k => k.AttributeName));
    }

    [Fact]
    public async Task DynamoDbStore_TableMissingAndCreateTableOff_NamesTheFix()
    {
        await using var dynamo = await DynaliteServer.StartAsync();
        using var store = new DynamoDbUsageStore(
            DynamoDbUsageStore.CreateClient(new DynamoDbUsageStoreOptions { ServiceUrl = dynamo.ServiceUrl.ToString() }),
            new DynamoDbUsageStoreOptions { TableName = "absent-table" }, TimeProvider.System, ownsClient: true);

        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => store.InitializeAsync(TestContext.Current.CancellationToken));

        Assert.Contains("create-usage-table", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DynamoDbStore_QueryByAgentUsesTheIndexAndTheRangeIsHalfOpen()
    {
        await using var dynamo = await DynaliteServer.StartAsync();
        var options = new DynamoDbUsageStoreOptions { ServiceUrl = dynamo.ServiceUrl.ToString(), TableName = "usage-query", CreateTable = true };
        using var store = new DynamoDbUsageStore(DynamoDbUsageStore.CreateClient(options), options, TimeProvider.System, ownsClient: true);
        await store.InitializeAsync(TestContext.Current.CancellationToken);
        var t0 = new DateTimeOffset(2026, 11, 20, 0, 0, 0, TimeSpan.Zero);
        UsageRecord Record(string id, DateTimeOffset at, string? agent, string model = "m") => new()
        {
            RequestId = id, Timestamp = at, Tenant = "acme", KeyId = "k", Agent = agent, RequestedModel = model, Status = 200, CostUsd = 0.00000015m,
        };
        var records = Enumerable.Range(0, 60).Select(i => Record($"r{i:D2}", t0.AddMinutes(i), i % 2 == 0 ? "bot" : null, i % 3 == 0 ? "x" : "m")).ToList();

        await store.WriteAsync(records, TestContext.Current.CancellationToken);
        await store.WriteAsync(records.Take(30).ToList(), TestContext.Current.CancellationToken); // again: still one item each

        async Task<List<UsageRecord>> Query(UsageQuery q)
        {
            var list = new List<UsageRecord>();
            await foreach (var r in store.QueryAsync(q, TestContext.Current.CancellationToken))
            {
                list.Add(r);
            }
            return list;
        }
        Assert.Equal(60, (await Query(new UsageQuery("acme", t0, t0.AddHours(2)))).Count);
        Assert.Equal(10, (await Query(new UsageQuery("acme", t0, t0.AddMinutes(10)))).Count); // minute 10 excluded
        Assert.Equal(30, (await Query(new UsageQuery("acme", t0, t0.AddHours(2)) { Agent = "bot" })).Count);
        Assert.Equal(20, (await Query(new UsageQuery("acme", t0, t0.AddHours(2)) { Model = "x" })).Count);
        Assert.Empty(await Query(new UsageQuery("other", t0, t0.AddHours(2))));
        Assert.Equal(0.000009m, (await Query(new UsageQuery("acme", t0, t0.AddHours(2)))).Sum(r => r.CostUsd!.Value));
    }

    [Fact]
    public async Task DynamoDbStore_AgentKeysThatCollide_NeverMixTenants()
    {
        await using var dynamo = await DynaliteServer.StartAsync();
        var options = new DynamoDbUsageStoreOptions { ServiceUrl = dynamo.ServiceUrl.ToString(), TableName = "usage-collide", CreateTable = true };
        using var store = new DynamoDbUsageStore(DynamoDbUsageStore.CreateClient(options), options, TimeProvider.System, ownsClient: true);
        await store.InitializeAsync(TestContext.Current.CancellationToken);
        var at = new DateTimeOffset(2026, 11, 20, 0, 0, 0, TimeSpan.Zero);
        // Both have the agent index key "AGENT#a#b#c".
        await store.WriteAsync(
        [
            new UsageRecord { RequestId = "r1", Timestamp = at, Tenant = "a#b", KeyId = "k", Agent = "c", Status = 200 },
            new UsageRecord { RequestId = "r2", Timestamp = at, Tenant = "a", KeyId = "k", Agent = "b#c", Status = 200 },
        ], TestContext.Current.CancellationToken);

        var found = new List<UsageRecord>();
        await foreach (var record in store.QueryAsync(new UsageQuery("a", at, at.AddHours(1)) { Agent = "b#c" }, TestContext.Current.CancellationToken))
        {
            found.Add(record);
        }

        Assert.Equal("r2", Assert.Single(found).RequestId);
    }
}
