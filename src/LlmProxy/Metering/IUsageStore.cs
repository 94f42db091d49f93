namespace LlmProxy.Metering;

/// <summary>
/// Where usage records are kept. Writes are idempotent: a record is keyed by its request id and timestamp, and writing
/// it again changes nothing. The gateway writes from one background writer; queries come from the usage API.
/// </summary>
public interface IUsageStore
{
    /// <summary>The store's name in logs and health reports (<c>sqlite</c>, <c>dynamodb</c>).</summary>
    string Name { get; }

    /// <summary>Prepares the store (schema, table). Called before the first write and retried while it fails.</summary>
    Task InitializeAsync(CancellationToken cancellationToken);

    /// <summary>Writes <paramref name="records"/>; all or, on an exception, possibly some of them (a retry completes the batch).</summary>
    Task WriteAsync(IReadOnlyList<UsageRecord> records, CancellationToken cancellationToken);

    /// <summary>The records of one tenant in a time range, optionally of one agent and one requested model, in any order.</summary>
    IAsyncEnumerable<UsageRecord> QueryAsync(UsageQuery query, CancellationToken cancellationToken);

    /// <summary>Throws when the store cannot be reached.</summary>
    Task CheckHealthAsync(CancellationToken cancellationToken);
}

/// <summary>Records of <paramref name="Tenant"/> with <paramref name="From"/> ≤ timestamp &lt; <paramref name="To"/>.</summary>
public sealed record UsageQuery(string Tenant, DateTimeOffset From, DateTimeOffset To)
{
    /// <summary>Only records of this application or agent.</summary>
    public string? Agent { get; init; }

    /// <summary>Only records of this requested (client-facing) model.</summary>
    public string? Model { get; init; }

    public bool Matches(UsageRecord record) =>
        string.Equals(record.Tenant, Tenant, StringComparison.Ordinal)
        && record.Timestamp >= From && record.Timestamp < To
        && (Agent is null || string.Equals(record.Agent, Agent, StringComparison.Ordinal))
        && (Model is null || string.Equals(record.RequestedModel, Model, StringComparison.Ordinal));
}
