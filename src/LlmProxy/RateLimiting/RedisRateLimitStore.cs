using System.Collections.Concurrent;
using System.Globalization;
using LlmProxy.Hosting;
using StackExchange.Redis;

namespace LlmProxy.RateLimiting;

/// <summary>
/// Counters in Redis, shared by every replica: each decision is one <see cref="RedisScripts.Acquire"/> round trip that
/// checks and consumes requests, tokens, a concurrency slot and the budgets of all the request's scopes atomically.
/// Failures surface as exceptions; <see cref="FailoverRateLimitStore"/> turns them into the configured failure mode.
/// </summary>
internal sealed partial class RedisRateLimitStore : IRateLimitStore, IAsyncDisposable, IDisposable
{
    private const long NanosPerDollar = 1_000_000_000;
    private static readonly long WindowMs = (long)LocalRateLimitStore.Window.TotalMilliseconds;

    private readonly RedisRateLimitOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _prefix;
    private readonly bool _serverClock;
    private readonly long _leaseMs;
    private readonly object _connectGate = new();
    private readonly ConcurrentDictionary<string, HeldSlots> _held = new(StringComparer.Ordinal);
    private readonly ITimer _renewTimer;
    private Task<ConnectionMultiplexer>? _connection;
    private int _renewing;

    public RedisRateLimitStore(RedisRateLimitOptions options, TimeProvider time, ILogger logger)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Configuration);
        _options = options;
        _time = time;
        _logger = logger;
        _prefix = options.KeyPrefix;
        _serverClock = options.Clock != RateLimitClocks.Gateway;
        _leaseMs = (long)options.ConcurrencyLease.TotalMilliseconds;
        var renewEvery = options.ConcurrencyLease / 3;
        _renewTimer = time.CreateTimer(static state => ((RedisRateLimitStore)state!).RenewHeldSlots(), this, renewEvery, renewEvery);
    }

    public async ValueTask<RateLimitDecision> AcquireAsync(RateLimitRequest request)
    {
        var scopes = request.Scopes;
        var keys = new RedisKey[scopes.Count * 6];
        var args = new RedisValue[9 + scopes.Count * 5];
        args[0] = Now();
        args[1] = WindowMs;
        args[2] = _leaseMs;
        args[3] = request.RequestId;
        args[4] = request.Tokens;
        args[5] = scopes.Count;
        args[6] = Milliseconds(request.Periods.Day.End - request.Periods.Now);
        args[7] = Milliseconds(request.Periods.Month.End - request.Periods.Now);
        args[8] = (long)LocalRateLimitStore.ConcurrencyRetryAfter.TotalMilliseconds;
        for (var i = 0; i < scopes.Count; i++)
        {
            var scope = scopes[i];
            var key = ScopeKey(request.Tenant, scope);
            keys[i * 6] = key + ":r";
            keys[i * 6 + 1] = key + ":tz";
            keys[i * 6 + 2] = key + ":th";
            keys[i * 6 + 3] = key + ":c";
            keys[i * 6 + 4] = key + ":bd:" + request.Periods.Day.Id;
            keys[i * 6 + 5] = key + ":bm:" + request.Periods.Month.Id;
            var limits = scope.Limits;
            args[9 + i * 5] = limits.RequestsPerMinute ?? -1;
            args[10 + i * 5] = limits.TokensPerMinute ?? -1;
            args[11 + i * 5] = limits.ConcurrentRequests ?? -1;
            args[12 + i * 5] = limits.DailyBudgetUsd is { } daily ? ToNanos(daily) : -1;
            args[13 + i * 5] = limits.MonthlyBudgetUsd is { } monthly ? ToNanos(monthly) : -1;
        }

        var result = (RedisResult[])(await EvaluateAsync(RedisScripts.Acquire, keys, args))!;
        var admitted = (long)result[0] == 1;
        var usage = new ScopeUsage[scopes.Count];
        for (var i = 0; i < scopes.Count; i++)
        {
            var o = 4 + i * 7;
            usage[i] = new ScopeUsage(
                (long)result[o], TimeSpan.FromMilliseconds((long)result[o + 1]),
                (long)result[o + 2], TimeSpan.FromMilliseconds((long)result[o + 3]),
                (int)(long)result[o + 4],
                new BudgetSpend(FromNanos((string?)result[o + 5]), FromNanos((string?)result[o + 6])));
        }
        if (!admitted)
        {
            var retryMs = (long)result[3];
            var rejection = new RateLimitRejection((int)(long)result[1], RateLimitKindNames.Parse((string)result[2]!),
                retryMs < 0 ? null : TimeSpan.FromMilliseconds(retryMs));
            return RateLimitDecision.Reject(request, rejection, usage);
        }

        var slots = scopes.Where(s => s.Limits.ConcurrentRequests is not null).Select(s => ScopeKey(request.Tenant, s) + ":c").ToArray();
        if (slots.Length > 0)
        {
            _held[request.RequestId] = new HeldSlots(request.Tenant, slots);
        }
        return RateLimitDecision.Admit(request, this, usage);
    }

    public async ValueTask CompleteAsync(RateLimitRequest request, long? actualTokens)
    {
        _held.TryRemove(request.RequestId, out _);
        var scopes = request.Scopes.Where(s => s.Limits.TokensPerMinute is not null || s.Limits.ConcurrentRequests is not null).ToArray();
        if (scopes.Length == 0)
        {
            return;
        }
        var keys = new RedisKey[scopes.Length * 3];
        var args = new RedisValue[5 + scopes.Length * 2];
        args[0] = Now();
        args[1] = WindowMs;
        args[2] = request.RequestId;
        args[3] = actualTokens ?? -1;
        args[4] = request.Tokens;
        for (var i = 0; i < scopes.Length; i++)
        {
            var key = ScopeKey(request.Tenant, scopes[i]);
            keys[i * 3] = key + ":tz";
            keys[i * 3 + 1] = key + ":th";
            keys[i * 3 + 2] = key + ":c";
            args[5 + i * 2] = scopes[i].Limits.TokensPerMinute is not null ? "1" : "0";
            args[6 + i * 2] = scopes[i].Limits.ConcurrentRequests is not null ? "1" : "0";
        }
        await EvaluateAsync(RedisScripts.Complete, keys, args);
    }

    public async ValueTask<IReadOnlyList<BudgetSpend>> RecordSpendAsync(string tenant, IReadOnlyList<RateLimitScope> scopes, decimal costUsd, BudgetPeriods periods)
    {
        var keys = new RedisKey[scopes.Count * 2];
        for (var i = 0; i < scopes.Count; i++)
        {
            var key = ScopeKey(tenant, scopes[i]);
            keys[i * 2] = key + ":bd:" + periods.Day.Id;
            keys[i * 2 + 1] = key + ":bm:" + periods.Month.Id;
        }
        // Keys outlive their period by a day, so a replica whose clock is slightly behind still finds them.
        RedisValue[] args =
        [
            ToNanos(costUsd),
            Milliseconds(periods.Day.End - periods.Now + TimeSpan.FromDays(1)),
            Milliseconds(periods.Month.End - periods.Now + TimeSpan.FromDays(1)),
        ];
        var result = (RedisResult[])(await EvaluateAsync(RedisScripts.Spend, keys, args))!;
        var totals = new BudgetSpend[scopes.Count];
        for (var i = 0; i < scopes.Count; i++)
        {
            totals[i] = new BudgetSpend((long)result[i * 2] / (decimal)NanosPerDollar, (long)result[i * 2 + 1] / (decimal)NanosPerDollar);
        }
        return totals;
    }

    /// <summary>Extends, in Redis, the concurrency slots of the requests this replica still has in flight.</summary>
    internal Task RenewHeldSlotsAsync()
    {
        var pairs = _held.ToArray();
        var tasks = new List<Task>();
        foreach (var tenant in pairs.GroupBy(p => p.Value.Tenant, StringComparer.Ordinal))
        {
            var keys = new List<RedisKey>();
            var args = new List<RedisValue> { Now(), _leaseMs };
            foreach (var (requestId, held) in tenant)
            {
                foreach (var slot in held.Keys)
                {
                    keys.Add(slot);
                    args.Add(requestId);
                }
            }
            tasks.Add(EvaluateAsync(RedisScripts.Renew, [.. keys], [.. args]));
        }
        return Task.WhenAll(tasks);
    }

    private void RenewHeldSlots()
    {
        if (_held.IsEmpty || Interlocked.Exchange(ref _renewing, 1) == 1)
        {
            return;
        }
        _ = RenewAndLogAsync();

        async Task RenewAndLogAsync()
        {
            try
            {
                await RenewHeldSlotsAsync();
            }
            catch (Exception ex)
            {
                LogRenewFailed(_logger, _held.Count, ex);
            }
            finally
            {
                Volatile.Write(ref _renewing, 0);
            }
        }
    }

    /// <summary>One script round trip, bounded by <see cref="RedisRateLimitOptions.OperationTimeout"/> (the client's async timeout).</summary>
    private async Task<RedisResult> EvaluateAsync(string script, RedisKey[] keys, RedisValue[] args)
    {
        var connection = await ConnectAsync();
        return await connection.GetDatabase().ScriptEvaluateAsync(script, keys, args);
    }

    /// <summary>
    /// Connects and runs the request scripts once, on no keys, so that the first requests find the connection made and
    /// the scripts' first round trip (Redis compiling them, and this process running that code path for the first time)
    /// already paid. On a freshly started replica of a busy machine that first round trip can take longer than
    /// <see cref="RedisRateLimitOptions.OperationTimeout"/>, which would send the first requests to the failure mode;
    /// here a round trip that timed out is tried again for up to <see cref="RedisRateLimitOptions.ConnectTimeout"/>
    /// (Redis keeps the script it compiled for the first try). Throws when Redis does not answer.
    /// </summary>
    public async Task WarmUpAsync()
    {
        await ConnectAsync();
        var giveUpAt = _time.GetUtcNow() + _options.ConnectTimeout;
        while (true)
        {
            try
            {
                RedisValue[] acquire = [Now(), WindowMs, _leaseMs, "warm-up", 0, 0, 1, 1, 0];
                await EvaluateAsync(RedisScripts.Acquire, [], acquire);
                RedisValue[] complete = [Now(), WindowMs, "warm-up", -1, 0];
                await EvaluateAsync(RedisScripts.Complete, [], complete);
                return;
            }
            catch (RedisTimeoutException) when (_time.GetUtcNow() < giveUpAt)
            {
            }
        }
    }

    private async Task<ConnectionMultiplexer> ConnectAsync()
    {
        Task<ConnectionMultiplexer> connecting;
        lock (_connectGate)
        {
            connecting = _connection ??= StartConnecting();
        }
        try
        {
            return await connecting.WaitAsync(_options.ConnectTimeout, _time);
        }
        catch when (connecting.IsFaulted || connecting.IsCanceled)
        {
            // Only a bad configuration makes the connect itself fail (AbortOnConnectFail is off); try afresh next time.
            lock (_connectGate)
            {
                if (ReferenceEquals(_connection, connecting))
                {
                    _connection = null;
                }
            }
            throw;
        }
    }

    private Task<ConnectionMultiplexer> StartConnecting()
    {
        var configuration = ConfigurationOptions.Parse(_options.Configuration!);
        // Start even when Redis is down, and reconnect in the background: the failure mode covers the gap.
        configuration.AbortOnConnectFail = false;
        RedisCommandSettings.Apply(configuration, _options.Configuration!, _options.OperationTimeout);
        LogConnecting(_logger, string.Join(",", configuration.EndPoints.Select(e => e.ToString())));
        return ConnectionMultiplexer.ConnectAsync(configuration);
    }

    private RedisValue Now() => _serverClock ? -1 : _time.GetUtcNow().ToUnixTimeMilliseconds();

    private string ScopeKey(string tenant, RateLimitScope scope) =>
        string.Concat(_prefix, "{", Uri.EscapeDataString(tenant), "}:", scope.Key);

    private static long Milliseconds(TimeSpan value) => Math.Max(1, (long)Math.Ceiling(value.TotalMilliseconds));

    internal static long ToNanos(decimal usd) => (long)Math.Round(usd * NanosPerDollar, MidpointRounding.AwayFromZero);

    private static decimal FromNanos(string? value) =>
        long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var nanos) ? nanos / (decimal)NanosPerDollar : 0;

    public async ValueTask DisposeAsync()
    {
        await _renewTimer.DisposeAsync();
        Task<ConnectionMultiplexer>? connection;
        lock (_connectGate)
        {
            connection = _connection;
            _connection = null;
        }
        if (connection is { IsCompletedSuccessfully: true })
        {
            await connection.Result.CloseAsync(allowCommandsToComplete: false);
            connection.Result.Dispose();
        }
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    private sealed record HeldSlots(string Tenant, string[] Keys);

    [LoggerMessage(EventId = 5111, Level = LogLevel.Information, Message = "Rate limiter connecting to Redis at {Endpoints}")]
    private static partial void LogConnecting(ILogger logger, string endpoints);

    [LoggerMessage(EventId = 5112, Level = LogLevel.Warning, Message = "Could not renew {Count} concurrency slot(s) in Redis")]
    private static partial void LogRenewFailed(ILogger logger, int count, Exception exception);
}
