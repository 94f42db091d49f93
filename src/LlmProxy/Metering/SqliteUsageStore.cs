using System.Globalization;
using System.Runtime.CompilerServices;
using Microsoft.Data.Sqlite;

namespace LlmProxy.Metering;

/// <summary>
/// The default usage store: a SQLite database, <c>usage.db</c> under the data directory, in WAL mode (the writer does not
/// block the usage API's readers). Table <c>usage_records</c>, primary key (request_id, ts), indexed by tenant + time and
/// tenant + agent + time. Writes are <c>INSERT OR IGNORE</c>, one transaction per batch. Timestamps are ISO 8601 UTC text
/// with seven fractional digits (text order is time order); costs are decimal text (exact).
/// </summary>
internal sealed class SqliteUsageStore : IUsageStore, IDisposable
{
    public const string FileName = "usage.db";

    private const string Columns =
        "request_id, ts, tenant, key_id, agent, requested_model, provider, deployment, upstream_model, attempts, streamed, cache_hit, " +
        "status, error_type, client_disconnected, prompt_tokens, completion_tokens, total_tokens, cached_tokens, tokens_estimated, cost_usd, latency_ms, ttft_ms";

    private const string Schema = """
        CREATE TABLE IF NOT EXISTS usage_records (
            request_id TEXT NOT NULL,
            ts TEXT NOT NULL,
            tenant TEXT NOT NULL,
            key_id TEXT NOT NULL,
            agent TEXT,
            requested_model TEXT,
            provider TEXT,
            deployment TEXT,
            upstream_model TEXT,
            attempts INTEGER NOT NULL,
            streamed INTEGER NOT NULL,
            cache_hit INTEGER NOT NULL,
            status INTEGER NOT NULL,
            error_type TEXT,
            client_disconnected INTEGER NOT NULL,
            prompt_tokens INTEGER NOT NULL,
            completion_tokens INTEGER NOT NULL,
            total_tokens INTEGER NOT NULL,
            cached_tokens INTEGER NOT NULL,
            tokens_estimated INTEGER NOT NULL,
            cost_usd TEXT,
            latency_ms REAL NOT NULL,
            ttft_ms REAL,
            PRIMARY KEY (request_id, ts)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS ix_usage_tenant_ts ON usage_records (tenant, ts);
        CREATE INDEX IF NOT EXISTS ix_usage_tenant_agent_ts ON usage_records (tenant, agent, ts);
        """;

    private readonly string _connectionString;
    private readonly SemaphoreSlim _initGate = new(1, 1);
    private volatile bool _initialized;

    public SqliteUsageStore(string databasePath)
    {
        DatabasePath = databasePath;
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = databasePath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();
    }

    public string Name => UsageStoreNames.Sqlite;

    public string DatabasePath { get; }

    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        if (_initialized)
        {
            return;
        }
        await _initGate.WaitAsync(cancellationToken);
        try
        {
            if (_initialized)
            {
                return;
            }
            Directory.CreateDirectory(Path.GetDirectoryName(DatabasePath)!);
            await using var connection = await OpenAsync(cancellationToken);
            await using (var wal = connection.CreateCommand())
            {
                // WAL is a property of the database file: set once, kept by every later connection.
                wal.CommandText = "PRAGMA journal_mode=WAL;";
                await wal.ExecuteNonQueryAsync(cancellationToken);
            }
            await using var command = connection.CreateCommand();
            command.CommandText = Schema;
            await command.ExecuteNonQueryAsync(cancellationToken);
            _initialized = true;
        }
        finally
        {
            _initGate.Release();
        }
    }

    public async Task WriteAsync(IReadOnlyList<UsageRecord> records, CancellationToken cancellationToken)
    {
        if (records.Count == 0)
        {
            return;
        }
        await InitializeAsync(cancellationToken);
        await using var connection = await OpenAsync(cancellationToken);
        await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = $"INSERT OR IGNORE INTO usage_records ({Columns}) VALUES (" +
            string.Join(", ", Columns.Split(", ").Select(c => "$" + c)) + ")";
        var parameters = Columns.Split(", ").Select(c => command.Parameters.Add("$" + c, SqliteType.Text)).ToArray();
        command.Prepare();
        foreach (var record in records)
        {
            object?[] values =
            [
                record.RequestId, record.TimestampText, record.Tenant, record.KeyId, record.Agent, record.RequestedModel, record.Provider,
                record.Deployment, record.UpstreamModel, record.Attempts, record.Streamed ? 1 : 0, record.CacheHit ? 1 : 0, record.Status,
                record.ErrorType, record.ClientDisconnected ? 1 : 0, record.PromptTokens, record.CompletionTokens, record.TotalTokens,
                record.CachedTokens, record.TokensEstimated ? 1 : 0, record.CostUsd?.ToString(CultureInfo.InvariantCulture), record.LatencyMs,
                record.TimeToFirstTokenMs,
            ];
            for (var i = 0; i < values.Length; i++)
            {
                parameters[i].SqliteType = values[i] switch
                {
                    int => SqliteType.Integer,
                    double => SqliteType.Real,
                    _ => SqliteType.Text,
                };
                parameters[i].Value = values[i] ?? DBNull.Value;
            }
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
    }

    public async IAsyncEnumerable<UsageRecord> QueryAsync(UsageQuery query, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        await InitializeAsync(cancellationToken);
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        var sql = $"SELECT {Columns} FROM usage_records WHERE tenant = $tenant AND ts >= $from AND ts < $to";
        command.Parameters.AddWithValue("$tenant", query.Tenant);
        command.Parameters.AddWithValue("$from", UsageRecord.FormatTimestamp(query.From));
        command.Parameters.AddWithValue("$to", UsageRecord.FormatTimestamp(query.To));
        if (query.Agent is not null)
        {
            sql += " AND agent = $agent";
            command.Parameters.AddWithValue("$agent", query.Agent);
        }
        if (query.Model is not null)
        {
            sql += " AND requested_model = $model";
            command.Parameters.AddWithValue("$model", query.Model);
        }
        command.CommandText = sql;
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            yield return Read(reader);
        }
    }

    public async Task CheckHealthAsync(CancellationToken cancellationToken)
    {
        await InitializeAsync(cancellationToken);
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT count(*) FROM (SELECT 1 FROM usage_records LIMIT 1)";
        await command.ExecuteScalarAsync(cancellationToken);
    }

    private async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            await using var pragma = connection.CreateCommand();
            pragma.CommandText = "PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;";
            await pragma.ExecuteNonQueryAsync(cancellationToken);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    private static UsageRecord Read(SqliteDataReader r) => new()
    {
        RequestId = r.GetString(0),
        Timestamp = UsageRecord.ParseTimestamp(r.GetString(1)),
        Tenant = r.GetString(2),
        KeyId = r.GetString(3),
        Agent = r.IsDBNull(4) ? null : r.GetString(4),
        RequestedModel = r.IsDBNull(5) ? null : r.GetString(5),
        Provider = r.IsDBNull(6) ? null : r.GetString(6),
        Deployment = r.IsDBNull(7) ? null : r.GetString(7),
        UpstreamModel = r.IsDBNull(8) ? null : r.GetString(8),
        Attempts = r.GetInt32(9),
        Streamed = r.GetInt32(10) != 0,
        CacheHit = r.GetInt32(11) != 0,
        Status = r.GetInt32(12),
        ErrorType = r.IsDBNull(13) ? null : r.GetString(13),
        ClientDisconnected = r.GetInt32(14) != 0,
        PromptTokens = r.GetInt32(15),
        CompletionTokens = r.GetInt32(16),
        TotalTokens = r.GetInt32(17),
        CachedTokens = r.GetInt32(18),
        TokensEstimated = r.GetInt32(19) != 0,
        CostUsd = r.IsDBNull(20) ? null : decimal.Parse(r.GetString(20), NumberStyles.Float, CultureInfo.InvariantCulture),
        LatencyMs = r.GetDouble(21),
        TimeToFirstTokenMs = r.IsDBNull(22) ? null : r.GetDouble(22),
    };

    public void Dispose()
    {
        _initGate.Dispose();
        // Pooled connections keep the file open (and the WAL unmerged) until the pool is cleared.
        using var connection = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(connection);
    }
}
