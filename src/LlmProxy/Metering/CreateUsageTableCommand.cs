using Microsoft.Extensions.Options;

namespace LlmProxy.Metering;

/// <summary>
/// <c>llmproxy create-usage-table</c>: prepares the configured usage store and exits. For DynamoDB it creates the table
/// (<c>LlmProxy:Metering:DynamoDb:TableName</c>, with its <c>GSI1</c> index) unless it exists and waits until it is active;
/// for SQLite it creates the database file and schema. Safe to run more than once.
/// </summary>
public static class CreateUsageTableCommand
{
    public const string Name = "create-usage-table";

    public static async Task<int> RunAsync(IConfiguration configuration, string contentRoot, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var options = new MeteringOptions();
        configuration.GetSection(MeteringOptions.SectionName).Bind(options);
        var problems = new MeteringOptionsValidator().Validate(null, options);
        if (problems.Failed)
        {
            await error.WriteLineAsync("LlmProxy:Metering is invalid:" + Environment.NewLine + string.Join(Environment.NewLine, problems.Failures!.Select(p => " - " + p)));
            return 2;
        }
        try
        {
            if (string.Equals(options.Store, UsageStoreNames.DynamoDb, StringComparison.OrdinalIgnoreCase))
            {
                using var store = new DynamoDbUsageStore(DynamoDbUsageStore.CreateClient(options.DynamoDb), options.DynamoDb, TimeProvider.System, ownsClient: true);
                var created = await store.CreateTableAsync(cancellationToken);
                await output.WriteLineAsync(created
                    ? $"Created DynamoDB table '{store.TableName}' (PK, SK; index {DynamoDbUsageStore.AgentIndex}); it is active."
                    : $"DynamoDB table '{store.TableName}' already exists and is active.");
            }
            else
            {
                var path = Path.Combine(options.ResolvePath(contentRoot, options.DataDirectory), SqliteUsageStore.FileName);
                using var store = new SqliteUsageStore(path);
                await store.InitializeAsync(cancellationToken);
                await output.WriteLineAsync($"SQLite usage ledger ready at {path}.");
            }
            return 0;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            await error.WriteLineAsync($"Could not create the usage table: {ex.Message}");
            return 1;
        }
    }
}
