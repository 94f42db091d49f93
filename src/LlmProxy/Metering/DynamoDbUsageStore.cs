using System.Globalization;
using System.Net;
using System.Runtime.CompilerServices;
using Amazon;
using Amazon.DynamoDBv2;
using Amazon.DynamoDBv2.Model;
using Amazon.Runtime;

namespace LlmProxy.Metering;

/// <summary>
/// The DynamoDB usage store (<c>LlmProxy:Metering:Store=dynamodb</c>). Table design, one on-demand table:
/// <list type="bullet">
/// <item><c>PK</c> (S) = <c>TENANT#{tenant}</c>, <c>SK</c> (S) = <c>{timestamp ISO 8601 UTC, 7 fractional digits}#{requestId}</c>.
/// A tenant's usage over a time range is one Query: <c>PK = :tenant AND SK BETWEEN :from AND :to</c>.</item>
/// <item><c>GSI1</c>: <c>GSI1PK</c> (S) = <c>AGENT#{tenant}#{agent}</c>, <c>GSI1SK</c> (S) = the SK; projection ALL. Sparse: only
/// records with an agent. An application's usage over a time range is one Query on it.</item>
/// <item>The other attributes are the record's fields in snake_case; <c>cost_usd</c> is a Number (exact decimal), absent when unpriced.</item>
/// </list>
/// Writes go through <c>BatchWriteItem</c>, 25 items a call, unprocessed items retried with backoff. A put of the same key
/// replaces the item with identical content, so writing a record twice leaves one item: the key is the idempotency key.
/// </summary>
internal sealed class DynamoDbUsageStore : IUsageStore, IDisposable
{
    public const string PartitionKey = "PK";
    public const string SortKey = "SK";
    public const string AgentIndex = "GSI1";
    public const string AgentPartitionKey = "GSI1PK";
    public const string AgentSortKey = "GSI1SK";
    private const int MaxBatchItems = 25;
    private const int MaxUnprocessedRetries = 8;

    private readonly IAmazonDynamoDB _client;
    private readonly bool _ownsClient;
    private readonly DynamoDbUsageStoreOptions _options;
    private readonly TimeProvider _time;

    public DynamoDbUsageStore(IAmazonDynamoDB client, DynamoDbUsageStoreOptions options, TimeProvider time, bool ownsClient = false)
    {
        _client = client;
        _options = options;
        _time = time;
        _ownsClient = ownsClient;
    }

    public string Name => UsageStoreNames.DynamoDb;

    public string TableName => _options.TableName;

    /// <summary>Creates the client the options describe: a loopback <c>ServiceUrl</c> (DynamoDB Local, dynalite) gets dummy credentials.</summary>
    public static IAmazonDynamoDB CreateClient(DynamoDbUsageStoreOptions options)
    {
        var config = new AmazonDynamoDBConfig
        {
            Timeout = options.RequestTimeout,
            MaxErrorRetry = 2,
        };
        if (options.Region is { Length: > 0 } region)
        {
            config.RegionEndpoint = RegionEndpoint.GetBySystemName(region);
        }
        if (options.ServiceUrl is { Length: > 0 } url)
        {
            config.ServiceURL = url;
            config.AuthenticationRegion = options.Region is { Length: > 0 } ? options.Region : "us-east-1";
            var host = new Uri(url).Host;
            if (host is "localhost" || (IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip)))
            {
                return new AmazonDynamoDBClient(new BasicAWSCredentials("llmproxy-local", "llmproxy-local"), config);
            }
        }
        return new AmazonDynamoDBClient(config);
    }

    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        if (_options.CreateTable)
        {
            await CreateTableAsync(cancellationToken);
            return;
        }
        try
        {
            await _client.DescribeTableAsync(new DescribeTableRequest { TableName = _options.TableName }, cancellationToken);
        }
        catch (ResourceNotFoundException ex)
        {
            throw new InvalidOperationException(
                $"DynamoDB table '{_options.TableName}' does not exist. Create it with 'llmproxy create-usage-table' or set LlmProxy:Metering:DynamoDb:CreateTable=true.", ex);
        }
    }

    /// <summary>Creates the table and its index if it does not exist, and waits until it is active. Returns true when it created it.</summary>
    public async Task<bool> CreateTableAsync(CancellationToken cancellationToken)
    {
        var created = false;
        try
        {
            await _client.CreateTableAsync(new CreateTableRequest
            {
                TableName = _options.TableName,
                BillingMode = BillingMode.PAY_PER_REQUEST,
                AttributeDefinitions =
                [
                    new AttributeDefinition(PartitionKey, ScalarAttributeType.S),
                    new AttributeDefinition(SortKey, ScalarAttributeType.S),
                    new AttributeDefinition(AgentPartitionKey, ScalarAttributeType.S),
                    new AttributeDefinition(AgentSortKey, ScalarAttributeType.S),
                ],
                KeySchema = [new KeySchemaElement(PartitionKey, KeyType.HASH), new KeySchemaElement(SortKey, KeyType.RANGE)],
                GlobalSecondaryIndexes =
                [
                    new GlobalSecondaryIndex
                    {
                        IndexName = AgentIndex,
                        KeySchema = [new KeySchemaElement(AgentPartitionKey, KeyType.HASH), new KeySchemaElement(AgentSortKey, KeyType.RANGE)],
                        Projection = new Projection { ProjectionType = ProjectionType.ALL },
                    },
                ],
            }, cancellationToken);
            created = true;
        }
        catch (ResourceInUseException)
        {
            // Already there (or being created by another instance).
        }

        for (var attempt = 0; ; attempt++)
        {
            var table = await _client.DescribeTableAsync(new DescribeTableRequest { TableName = _options.TableName }, cancellationToken);
            if (table.Table.TableStatus == TableStatus.ACTIVE)
            {
                return created;
            }
            if (attempt >= 600)
            {
                throw new TimeoutException($"DynamoDB table '{_options.TableName}' did not become active.");
            }
            await Task.Delay(TimeSpan.FromMilliseconds(attempt < 20 ? 100 : 1000), _time, cancellationToken);
        }
    }

    public async Task WriteAsync(IReadOnlyList<UsageRecord> records, CancellationToken cancellationToken)
    {
        // Duplicate keys in one BatchWriteItem call are rejected, so send each record once.
        var unique = records.DistinctBy(r => r.Key).ToArray();
        foreach (var chunk in unique.Chunk(MaxBatchItems))
        {
            var pending = new Dictionary<string, List<WriteRequest>>(StringComparer.Ordinal)
            {
                [_options.TableName] = chunk.Select(r => new WriteRequest(new PutRequest(ToItem(r)))).ToList(),
            };
            var delay = TimeSpan.FromMilliseconds(50);
            for (var attempt = 0; ; attempt++)
            {
                var response = await _client.BatchWriteItemAsync(new BatchWriteItemRequest { RequestItems = pending }, cancellationToken);
                if (response.UnprocessedItems is not { Count: > 0 } unprocessed || unprocessed.Values.All(v => v is not { Count: > 0 }))
                {
                    break;
                }
                if (attempt >= MaxUnprocessedRetries)
                {
                    throw new ProvisionedThroughputExceededException(
                        $"DynamoDB left {unprocessed.Values.Sum(v => v?.Count ?? 0)} usage record(s) unprocessed after {attempt + 1} attempts.");
                }
                pending = unprocessed;
                await Task.Delay(delay, _time, cancellationToken);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(2).Ticks));
            }
        }
    }

    public async IAsyncEnumerable<UsageRecord> QueryAsync(UsageQuery query, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        var values = new Dictionary<string, AttributeValue>(StringComparer.Ordinal)
        {
            [":from"] = new AttributeValue { S = UsageRecord.FormatTimestamp(query.From) },
            // "#" sorts before every character of a request id, so this bound excludes records at exactly To.
            [":to"] = new AttributeValue { S = UsageRecord.FormatTimestamp(query.To) },
        };
        var request = new QueryRequest { TableName = _options.TableName, ExpressionAttributeValues = values };
        if (query.Agent is not null)
        {
            request.IndexName = AgentIndex;
            request.KeyConditionExpression = $"{AgentPartitionKey} = :pk AND {AgentSortKey} BETWEEN :from AND :to";
            values[":pk"] = new AttributeValue { S = AgentKey(query.Tenant, query.Agent) };
        }
        else
        {
            request.KeyConditionExpression = $"{PartitionKey} = :pk AND {SortKey} BETWEEN :from AND :to";
            values[":pk"] = new AttributeValue { S = TenantKey(query.Tenant) };
        }
        if (query.Model is not null)
        {
            request.FilterExpression = "requested_model = :model";
            values[":model"] = new AttributeValue { S = query.Model };
        }

        do
        {
            var response = await _client.QueryAsync(request, cancellationToken);
            foreach (var item in response.Items ?? [])
            {
                var record = FromItem(item);
                // The agent index key joins two free-form names ("AGENT#a#b#c" is tenant "a#b", agent "c" and tenant "a",
                // agent "b#c"): only the record's own fields tell, and another tenant's records must never come back.
                // BETWEEN is inclusive; the SK of a record at exactly To sorts after ":to" anyway, this keeps the contract explicit.
                if (query.Matches(record))
                {
                    yield return record;
                }
            }
            request.ExclusiveStartKey = response.LastEvaluatedKey is { Count: > 0 } last ? last : null;
        }
        while (request.ExclusiveStartKey is not null);
    }

    public Task CheckHealthAsync(CancellationToken cancellationToken) =>
        _client.DescribeTableAsync(new DescribeTableRequest { TableName = _options.TableName }, cancellationToken);

    internal static string TenantKey(string tenant) => "TENANT#" + tenant;

    internal static string AgentKey(string tenant, string agent) => "AGENT#" + tenant + "#" + agent;

    internal static string SortKeyOf(UsageRecord record) => record.TimestampText + "#" + record.RequestId;

    internal static Dictionary<string, AttributeValue> ToItem(UsageRecord r)
    {
        var sortKey = SortKeyOf(r);
        var item = new Dictionary<string, AttributeValue>(StringComparer.Ordinal)
        {
            [PartitionKey] = S(TenantKey(r.Tenant)),
            [SortKey] = S(sortKey),
            ["request_id"] = S(r.RequestId),
            ["ts"] = S(r.TimestampText),
            ["tenant"] = S(r.Tenant),
            ["key_id"] = S(r.KeyId),
            ["attempts"] = N(r.Attempts),
            ["streamed"] = new AttributeValue { BOOL = r.Streamed },
            ["cache_hit"] = new AttributeValue { BOOL = r.CacheHit },
            ["status"] = N(r.Status),
            ["client_disconnected"] = new AttributeValue { BOOL = r.ClientDisconnected },
            ["prompt_tokens"] = N(r.PromptTokens),
            ["completion_tokens"] = N(r.CompletionTokens),
            ["total_tokens"] = N(r.TotalTokens),
            ["cached_tokens"] = N(r.CachedTokens),
            ["tokens_estimated"] = new AttributeValue { BOOL = r.TokensEstimated },
            ["latency_ms"] = new AttributeValue { N = r.LatencyMs.ToString("R", CultureInfo.InvariantCulture) },
        };
        if (r.Agent is not null)
        {
            item["agent"] = S(r.Agent);
            item[AgentPartitionKey] = S(AgentKey(r.Tenant, r.Agent));
            item[AgentSortKey] = S(sortKey);
        }
        AddIfSet(item, "requested_model", r.RequestedModel);
        AddIfSet(item, "provider", r.Provider);
        AddIfSet(item, "deployment", r.Deployment);
        AddIfSet(item, "upstream_model", r.UpstreamModel);
        AddIfSet(item, "error_type", r.ErrorType);
        if (r.CostUsd is { } cost)
        {
            item["cost_usd"] = new AttributeValue { N = cost.ToString(CultureInfo.InvariantCulture) };
        }
        if (r.TimeToFirstTokenMs is { } ttft)
        {
            item["ttft_ms"] = new AttributeValue { N = ttft.ToString("R", CultureInfo.InvariantCulture) };
        }
        return item;
    }

    internal static UsageRecord FromItem(Dictionary<string, AttributeValue> item) => new()
    {
        RequestId = item["request_id"].S,
        Timestamp = UsageRecord.ParseTimestamp(item["ts"].S),
        Tenant = item["tenant"].S,
        KeyId = item["key_id"].S,
        Agent = Str(item, "agent"),
        RequestedModel = Str(item, "requested_model"),
        Provider = Str(item, "provider"),
        Deployment = Str(item, "deployment"),
        UpstreamModel = Str(item, "upstream_model"),
        Attempts = Int(item, "attempts"),
        Streamed = Bool(item, "streamed"),
        CacheHit = Bool(item, "cache_hit"),
        Status = Int(item, "status"),
        ErrorType = Str(item, "error_type"),
        ClientDisconnected = Bool(item, "client_disconnected"),
        PromptTokens = Int(item, "prompt_tokens"),
        CompletionTokens = Int(item, "completion_tokens"),
        TotalTokens = Int(item, "total_tokens"),
        CachedTokens = Int(item, "cached_tokens"),
        TokensEstimated = Bool(item, "tokens_estimated"),
        CostUsd = item.TryGetValue("cost_usd", out var cost) && cost.N is { } n ? decimal.Parse(n, NumberStyles.Float, CultureInfo.InvariantCulture) : null,
        LatencyMs = item.TryGetValue("latency_ms", out var latency) && latency.N is { } l ? double.Parse(l, CultureInfo.InvariantCulture) : 0,
        TimeToFirstTokenMs = item.TryGetValue("ttft_ms", out var ttft) && ttft.N is { } t ? double.Parse(t, CultureInfo.InvariantCulture) : null,
    };

    private static AttributeValue S(string value) => new() { S = value };

    private static AttributeValue N(int value) => new() { N = value.ToString(CultureInfo.InvariantCulture) };

    private static void AddIfSet(Dictionary<string, AttributeValue> item, string name, string? value)
    {
        if (value is not null)
        {
            item[name] = S(value);
        }
    }

    private static string? Str(Dictionary<string, AttributeValue> item, string name) => item.TryGetValue(name, out var value) ? value.S : null;

    private static int Int(Dictionary<string, AttributeValue> item, string name) =>
        item.TryGetValue(name, out var value) && value.N is { } n ? int.Parse(n, CultureInfo.InvariantCulture) : 0;

    private static bool Bool(Dictionary<string, AttributeValue> item, string name) => item.TryGetValue(name, out var value) && value.BOOL == true;

    public void Dispose()
    {
        if (_ownsClient)
        {
            _client.Dispose();
        }
    }
}
