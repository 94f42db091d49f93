using System.Diagnostics;
using LlmProxy.IntegrationTests.Infrastructure;
using LlmProxy.Metering;

namespace LlmProxy.IntegrationTests.Metering;

/// <summary>
/// The real gateway with metering on: its own data directory and a pricing file with round prices, the usage and
/// pricing endpoints mapped, and SQLite or DynamoDB as the usage store.
/// </summary>
internal sealed class MeteredGateway : IAsyncDisposable
{
    public const string AdminKey = "sk-admin-metering-0123456789";

    /// <summary>Upstream model ids the test pricing file prices (USD per million tokens).</summary>
    public const string PricedModel = "sim-chat";
    public const decimal PricedInput = 2.50m;
    public const decimal PricedCachedInput = 1.25m;
    public const decimal PricedOutput = 10.00m;
    public const string CheapModel = "sim-cheap";
    public const decimal CheapInput = 1.00m;
    public const decimal CheapOutput = 2.00m;

    private readonly DirectoryInfo _directory;
    private readonly bool _keepDirectory;
    private int _disposed;

    private MeteredGateway(GatewayHost gateway, DirectoryInfo directory, bool keepDirectory)
    {
        Gateway = gateway;
        _directory = directory;
        _keepDirectory = keepDirectory;
    }

    /// <summary>The test's directory: the pricing file and <c>data/</c>. Pass it to another gateway to start it on the same data.</summary>
    public string Root => _directory.FullName;

    public GatewayHost Gateway { get; }

    public string DataDirectory => Path.Combine(_directory.FullName, "data");

    public IUsageStore Store => Gateway.Services.GetRequiredService<IUsageStore>();

    internal UsageLedgerWriter Writer => Gateway.Services.GetRequiredService<UsageLedgerWriter>();

    /// <param name="dataDirectory">An earlier gateway's <see cref="Root"/> to reuse; a new directory otherwise.</param>
    /// <param name="keepDataDirectory">Leave the directory in place on dispose (for a later gateway, which then removes it).</param>
    public static async Task<MeteredGateway> StartAsync(GatewaySettings settings, DynaliteServer? dynamo = null,
        Action<IServiceCollection>? services = null, string? tableName = null, string? dataDirectory = null, bool keepDataDirectory = false)
    {
        var directory = dataDirectory is null ? Directory.CreateTempSubdirectory("llmproxy-metering-it-") : new DirectoryInfo(dataDirectory);
        var pricing = Path.Combine(directory.FullName, "pricing.json");
        await File.WriteAllTextAsync(pricing, $$"""
            { "currency": "USD", "prices": [
              { "provider": "openai", "model": "{{PricedModel}}", "input_per_million": {{PricedInput}}, "cached_input_per_million": {{PricedCachedInput}}, "output_per_million": {{PricedOutput}}, "effective_date": "2024-01-01" },
              { "provider": "openai", "model": "{{CheapModel}}", "input_per_million": {{CheapInput}}, "output_per_million": {{CheapOutput}}, "effective_date": "2024-01-01" }
            ] }
            """);
        settings.AdminKey(AdminKey)
            .Set("LlmProxy:Metering:DataDirectory", Path.Combine(directory.FullName, "data"))
            .Set("LlmProxy:Metering:PricingFile", pricing)
            .Set("LlmProxy:Metering:RetryInitialDelay", "00:00:00.100")
            .Set("LlmProxy:Metering:RetryMaxDelay", "00:00:00.500");
        if (dynamo is not null)
        {
            settings.Set("LlmProxy:Metering:Store", "dynamodb")
                .Set("LlmProxy:Metering:DynamoDb:ServiceUrl", dynamo.ServiceUrl.ToString())
                .Set("LlmProxy:Metering:DynamoDb:TableName", tableName ?? "usage-" + Guid.NewGuid().ToString("N")[..12])
                .Set("LlmProxy:Metering:DynamoDb:CreateTable", "true")
                .Set("LlmProxy:Metering:DynamoDb:RequestTimeout", "00:00:05");
        }
        try
        {
            var gateway = await GatewayHost.StartAsync(settings, s =>
            {
                services?.Invoke(s);
                s.AddLlmProxyMetering();
            }, configureApp: app => app.MapLlmProxyMetering());
            return new MeteredGateway(gateway, directory, keepDataDirectory);
        }
        catch
        {
            directory.Delete(recursive: true);
            throw;
        }
    }

    /// <summary>Reads a tenant's records straight from the store (the whole time axis).</summary>
    public async Task<List<UsageRecord>> RecordsAsync(string tenant)
    {
        var records = new List<UsageRecord>();
        var query = new UsageQuery(tenant, new DateTimeOffset(2000, 1, 1, 0, 0, 0, TimeSpan.Zero), new DateTimeOffset(2100, 1, 1, 0, 0, 0, TimeSpan.Zero));
        await foreach (var record in Store.QueryAsync(query, CancellationToken.None))
        {
            records.Add(record);
        }
        return records;
    }

    /// <summary>
    /// Waits until the store holds <paramref name="count"/> records of <paramref name="tenant"/> and the writer has nothing left.
    /// A request's record is appended as its handler returns, which can be just after the client has its response.
    /// </summary>
    public async Task<List<UsageRecord>> WaitForRecordsAsync(string tenant, int count, TimeSpan? timeout = null)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            List<UsageRecord>? records = null;
            if (Writer.IsDrained)
            {
                try
                {
                    records = await RecordsAsync(tenant);
                }
                catch (Exception) when (deadline.Elapsed < (timeout ?? TimeSpan.FromSeconds(30)))
                {
                    // The store is coming back.
                }
                if (records is not null && records.Count >= count)
                {
                    return records;
                }
            }
            if (deadline.Elapsed > (timeout ?? TimeSpan.FromSeconds(30)))
            {
                throw new TimeoutException($"{records?.Count.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?"} of {count} usage records of '{tenant}' " +
                    $"landed; {Writer.Pending} pending, spill file present: {!Writer.IsDrained}.");
            }
            await Task.Delay(25);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }
        await Gateway.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        if (_keepDirectory)
        {
            return;
        }
        try
        {
            _directory.Delete(recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>The metering integration tests share CPU-heavy servers: they run one at a time.</summary>
[CollectionDefinition(Name)]
public sealed class MeteringCollection
{
    public const string Name = "Metering";
}
