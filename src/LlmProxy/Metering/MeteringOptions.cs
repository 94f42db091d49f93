namespace LlmProxy.Metering;

/// <summary>
/// The <c>LlmProxy:Metering</c> configuration section: where usage records go and how prices are found.
/// Read at startup; changing the store or the data directory needs a restart. The pricing file is watched.
/// </summary>
public sealed class MeteringOptions
{
    public const string SectionName = "LlmProxy:Metering";

    /// <summary>
    /// Where the usage ledger is kept: <see cref="UsageStoreNames.Sqlite"/> (a file under <see cref="DataDirectory"/>) or
    /// <see cref="UsageStoreNames.DynamoDb"/> (see <see cref="DynamoDb"/>). The default is <c>sqlite</c>.
    /// </summary>
    public string Store { get; set; } = UsageStoreNames.Sqlite;

    /// <summary>
    /// Directory of the SQLite ledger (<c>usage.db</c>) and of the spill file, relative to the content root unless
    /// absolute. The default is <c>data</c>.
    /// </summary>
    public string DataDirectory { get; set; } = "data";

    /// <summary>The price table, relative to the content root unless absolute. The default is <c>config/pricing.json</c>.</summary>
    public string PricingFile { get; set; } = Path.Combine("config", "pricing.json");

    /// <summary>
    /// Records accepted from requests and not yet taken by the ledger writer. When it is full (the writer is stuck in a
    /// slow store call), new records go straight to the spill file. The default is 10,000.
    /// </summary>
    public int QueueCapacity { get; set; } = 10_000;

    /// <summary>
    /// Records the writer keeps in memory, retrying, while the store is failing; past this, the oldest are appended to the
    /// spill file. The default is 10,000.
    /// </summary>
    public int BufferCapacity { get; set; } = 10_000;

    /// <summary>Records written to the store in one batch. The default is 100 (DynamoDB writes them 25 at a time).</summary>
    public int BatchSize { get; set; } = 100;

    /// <summary>Wait before the first retry after the store failed; doubled after each failure. The default is 500 ms.</summary>
    public TimeSpan RetryInitialDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Longest wait between two retries of a failing store. The default is 30 seconds.</summary>
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Longest application id kept from <c>x-llmproxy-agent</c> or <c>user</c>; longer ones are cut. The default is 128.</summary>
    public int MaxAgentLength { get; set; } = 128;

    /// <summary>Longest time range one usage query may cover. The default is 400 days.</summary>
    public TimeSpan MaxQueryRange { get; set; } = TimeSpan.FromDays(400);

    /// <summary>The DynamoDB store, used when <see cref="Store"/> is <c>dynamodb</c>.</summary>
    public DynamoDbUsageStoreOptions DynamoDb { get; set; } = new();

    internal IEnumerable<string> Validate()
    {
        if (!UsageStoreNames.IsKnown(Store))
        {
            yield return $"LlmProxy:Metering:Store '{Store}' is not a usage store; use '{UsageStoreNames.Sqlite}' or '{UsageStoreNames.DynamoDb}'.";
        }
        if (string.IsNullOrWhiteSpace(DataDirectory))
        {
            yield return "LlmProxy:Metering:DataDirectory must not be empty.";
        }
        if (string.IsNullOrWhiteSpace(PricingFile))
        {
            yield return "LlmProxy:Metering:PricingFile must not be empty.";
        }
        if (QueueCapacity < 1)
        {
            yield return "LlmProxy:Metering:QueueCapacity must be at least 1.";
        }
        if (BufferCapacity < 1)
        {
            yield return "LlmProxy:Metering:BufferCapacity must be at least 1.";
        }
        if (BatchSize is < 1 or > 1000)
        {
            yield return "LlmProxy:Metering:BatchSize must be between 1 and 1000.";
        }
        if (RetryInitialDelay <= TimeSpan.Zero || RetryMaxDelay < RetryInitialDelay)
        {
            yield return "LlmProxy:Metering:RetryInitialDelay must be positive and not above RetryMaxDelay.";
        }
        if (MaxAgentLength is < 1 or > 1024)
        {
            yield return "LlmProxy:Metering:MaxAgentLength must be between 1 and 1024.";
        }
        if (MaxQueryRange <= TimeSpan.Zero)
        {
            yield return "LlmProxy:Metering:MaxQueryRange must be positive.";
        }
        if (string.Equals(Store, UsageStoreNames.DynamoDb, StringComparison.OrdinalIgnoreCase))
        {
            foreach (var problem in DynamoDb.Validate())
            {
                yield return problem;
            }
        }
    }

    internal string ResolvePath(string contentRoot, string path) =>
        Path.GetFullPath(Path.IsPathRooted(path) ? path : Path.Combine(contentRoot, path));
}

/// <summary>
/// The DynamoDB usage table. Table design (one table, on-demand capacity):
/// <list type="bullet">
/// <item><c>PK</c> = <c>TENANT#{tenant}</c>, <c>SK</c> = <c>{timestamp ISO 8601}#{requestId}</c>: a tenant's records in time order.</item>
/// <item>GSI <c>GSI1</c>: <c>GSI1PK</c> = <c>AGENT#{tenant}#{agent}</c>, <c>GSI1SK</c> = <c>SK</c>, projection ALL: one application's records
/// in time order. Sparse: records without an agent are not in it.</item>
/// </list>
/// </summary>
public sealed class DynamoDbUsageStoreOptions
{
    /// <summary>The table name. The default is <c>llmproxy-usage</c>.</summary>
    public string TableName { get; set; } = "llmproxy-usage";

    /// <summary>AWS region of the table, e.g. <c>us-east-1</c>. The default is the SDK's (AWS_REGION, profile).</summary>
    public string? Region { get; set; }

    /// <summary>
    /// Endpoint override, for DynamoDB Local or dynalite (<c>http://127.0.0.1:8000</c>). On a loopback address, fixed dummy
    /// credentials are used; elsewhere the SDK's default credential chain. The default is none: the region's AWS endpoint.
    /// </summary>
    public string? ServiceUrl { get; set; }

    /// <summary>Create the table (and wait until it is active) at startup when it does not exist. The default is false.</summary>
    public bool CreateTable { get; set; }

    /// <summary>Timeout of one DynamoDB call. The default is 10 seconds.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    internal IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(TableName) || TableName.Length is < 3 or > 255
            || !TableName.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.'))
        {
            yield return $"LlmProxy:Metering:DynamoDb:TableName '{TableName}' is not a valid DynamoDB table name (3-255 of a-z A-Z 0-9 _ - .).";
        }
        if (ServiceUrl is { Length: > 0 } url && !Uri.TryCreate(url, UriKind.Absolute, out _))
        {
            yield return $"LlmProxy:Metering:DynamoDb:ServiceUrl '{url}' is not an absolute URL.";
        }
        if (RequestTimeout <= TimeSpan.Zero)
        {
            yield return "LlmProxy:Metering:DynamoDb:RequestTimeout must be positive.";
        }
    }
}

/// <summary>Names of the usage stores, as used in <see cref="MeteringOptions.Store"/>.</summary>
public static class UsageStoreNames
{
    public const string Sqlite = "sqlite";
    public const string DynamoDb = "dynamodb";

    public static bool IsKnown(string? name) =>
        string.Equals(name, Sqlite, StringComparison.OrdinalIgnoreCase) || string.Equals(name, DynamoDb, StringComparison.OrdinalIgnoreCase);
}
