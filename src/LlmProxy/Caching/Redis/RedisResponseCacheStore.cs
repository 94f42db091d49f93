using LlmProxy.Hosting;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace LlmProxy.Caching.Redis;

/// <summary>
/// Entries in Redis, shared by every gateway instance: <c>SET key value PX ttl</c> and <c>GET key</c>. Every
/// operation is bounded by <see cref="RedisResponseCacheOptions.OperationTimeout"/> (the client's async timeout, unless the
/// configuration string sets <c>asyncTimeout</c>), fails at once while Redis is disconnected, and after a failure Redis is
/// skipped for a growing backoff (<see cref="StoreBackoff"/>) so that a dead Redis costs requests nothing but
/// their cache hits. Failures are thrown to the caller (which logs and counts them); skipped operations are not.
/// </summary>
internal sealed partial class RedisResponseCacheStore : IResponseCacheStore, IDisposable
{
    private readonly ConfigurationOptions _configuration;
    private readonly TimeSpan _timeout;
    private readonly StoreBackoff _backoff;
    private readonly ILogger<RedisResponseCacheStore> _logger;
    private readonly Lock _connectLock = new();
    private Task<ConnectionMultiplexer>? _connection;
    private bool _disposed;

    public RedisResponseCacheStore(IOptions<ResponseCacheOptions> options, TimeProvider time, ILogger<RedisResponseCacheStore> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        var redis = options.Value.Redis;
        _configuration = CreateConfiguration(redis.Configuration ?? throw new InvalidOperationException(
            $"{ResponseCacheOptions.SectionName}:Redis:Configuration is required for the Redis response cache store."), redis.OperationTimeout);
        _timeout = redis.OperationTimeout;
        _backoff = new StoreBackoff(redis.InitialBackoff, redis.MaxBackoff, time);
        _logger = logger;
        // Start connecting now so that the first request does not wait for the handshake.
        _ = GetConnectionTask();
    }

    internal StoreBackoff Backoff => _backoff;

    /// <summary>
    /// The user's configuration string, with settings suited to an optional cache where the string does not
    /// choose them: never fail startup on an unreachable Redis, and give up on it quickly.
    /// </summary>
    internal static ConfigurationOptions CreateConfiguration(string text, TimeSpan operationTimeout)
    {
        var configuration = ConfigurationOptions.Parse(text);
        if (!RedisCommandSettings.HasOption(text, "abortConnect"))
        {
            configuration.AbortOnConnectFail = false;
        }
        if (!RedisCommandSettings.HasOption(text, "connectTimeout"))
        {
            configuration.ConnectTimeout = 1000;
        }
        RedisCommandSettings.Apply(configuration, text, operationTimeout);
        // Reconnect attempts once a second, so a restarted Redis is back in use within seconds.
        configuration.ReconnectRetryPolicy ??= new LinearRetry(1000);
        return configuration;
    }

    public async ValueTask<byte[]?> GetAsync(string key, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (!_backoff.TryEnter(out var probe))
        {
            return null;
        }
        try
        {
            var database = await GetDatabaseAsync(cancellationToken);
            var value = await database.StringGetAsync(key);
            Succeeded(probe);
            return value.IsNull ? null : (byte[]?)value;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            _backoff.Abandon(probe);
            throw;
        }
        catch (Exception ex)
        {
            Failed(probe, ex);
            throw;
        }
    }

    public async ValueTask SetAsync(string key, byte[] value, TimeSpan validFor, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        if (validFor <= TimeSpan.Zero || !_backoff.TryEnter(out var probe))
        {
            return;
        }
        try
        {
            var database = await GetDatabaseAsync(cancellationToken);
            // Whole milliseconds: StackExchange.Redis sends SET key value PX <ms> for a sub-second-precise expiry.
            var expiry = TimeSpan.FromMilliseconds(Math.Max(1, Math.Floor(validFor.TotalMilliseconds)));
            await database.StringSetAsync(key, value, expiry);
            Succeeded(probe);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            _backoff.Abandon(probe);
            throw;
        }
        catch (Exception ex)
        {
            Failed(probe, ex);
            throw;
        }
    }

    /// <summary>Round trip to Redis for the health check; not subject to the backoff.</summary>
    public async Task<TimeSpan> PingAsync(CancellationToken cancellationToken)
    {
        var database = await GetDatabaseAsync(cancellationToken);
        return await database.PingAsync();
    }

    private async ValueTask<IDatabase> GetDatabaseAsync(CancellationToken cancellationToken)
    {
        var connecting = GetConnectionTask();
        var connection = connecting.IsCompletedSuccessfully ? connecting.Result : await connecting.WaitAsync(_timeout, cancellationToken);
        return connection.GetDatabase();
    }

    private Task<ConnectionMultiplexer> GetConnectionTask()
    {
        var current = _connection;
        if (current is not null && !current.IsFaulted && !current.IsCanceled)
        {
            return current;
        }
        lock (_connectLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_connection is null || _connection.IsFaulted || _connection.IsCanceled)
            {
                // With abortConnect=false this completes even while Redis is down; the multiplexer keeps reconnecting.
                _connection = ConnectionMultiplexer.ConnectAsync(_configuration);
            }
            return _connection;
        }
    }

    private void Succeeded(bool probe)
    {
        if (_backoff.OnSuccess(probe))
        {
            LogResumed(_logger);
        }
    }

    private void Failed(bool probe, Exception exception)
    {
        if (_backoff.OnFailure(probe) is { } pause)
        {
            LogBackingOff(_logger, pause.TotalSeconds, exception.GetType().Name);
        }
    }

    public void Dispose()
    {
        Task<ConnectionMultiplexer>? connection;
        lock (_connectLock)
        {
            _disposed = true;
            connection = _connection;
            _connection = null;
        }
        if (connection is { IsCompletedSuccessfully: true })
        {
            connection.Result.Dispose();
        }
        else
        {
            connection?.ContinueWith(static t => t.Result.Dispose(), CancellationToken.None,
                TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
        }
    }

    [LoggerMessage(EventId = 4101, Level = LogLevel.Warning,
        Message = "Response cache: Redis failed ({ExceptionType}); requests skip the cache for {BackoffSeconds:F1} s before Redis is tried again")]
    private static partial void LogBackingOff(ILogger logger, double backoffSeconds, string exceptionType);

    [LoggerMessage(EventId = 4102, Level = LogLevel.Information, Message = "Response cache: Redis is reachable again; caching resumed")]
    private static partial void LogResumed(ILogger logger);
}
