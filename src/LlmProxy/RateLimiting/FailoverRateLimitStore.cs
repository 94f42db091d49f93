using System.Collections.Concurrent;

namespace LlmProxy.RateLimiting;

/// <summary>
/// The shared store (Redis) with a failure mode. Any failure of the shared store (unreachable, timed out, an error)
/// marks it down for <see cref="RedisRateLimitOptions.RetryInterval"/>: meanwhile no request waits on it, and then a
/// single request probes it again. While it is down, requests either go to an in-process fallback whose limits are
/// each replica's share (limit / <see cref="RedisRateLimitOptions.ReplicaCount"/>), or are refused with
/// <see cref="RateLimitKind.StoreUnavailable"/>. Spend that could not be added to the shared store, in either mode, is
/// summed in memory and added once the shared store answers again (lost only if this process ends first). Nothing here
/// ever throws into the request.
/// </summary>
internal sealed partial class FailoverRateLimitStore : IRateLimitStore, IAsyncDisposable, IDisposable
{
    private readonly IRateLimitStore _primary;
    private readonly IRateLimitStore _fallback;
    private readonly bool _failClosed;
    private readonly int _replicas;
    private readonly TimeSpan _retryInterval;
    private readonly TimeProvider _time;
    private readonly RateLimitMetrics? _metrics;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, byte> _admittedByFallback = new(StringComparer.Ordinal);
    private readonly object _gate = new();
    private bool _down;
    private long _retryAt;
    private int _probing;
    private Task? _warmUp;
    private readonly Dictionary<string, DeferredSpend> _deferred = new(StringComparer.Ordinal);
    private Task? _replay;

    public FailoverRateLimitStore(IRateLimitStore primary, IRateLimitStore fallback, RedisRateLimitOptions options, TimeProvider time,
        RateLimitMetrics? metrics, ILogger logger)
    {
        _primary = primary;
        _fallback = fallback;
        _failClosed = options.FailureMode == RateLimitFailureModes.Closed;
        _replicas = Math.Max(1, options.ReplicaCount);
        _retryInterval = options.RetryInterval;
        _time = time;
        _metrics = metrics;
        _logger = logger;
    }

    /// <summary>Whether the shared store is currently considered down.</summary>
    public bool IsDegraded
    {
        get
        {
            lock (_gate)
            {
                return _down;
            }
        }
    }

    /// <summary>Lets the shared store connect and make its first round trip ahead of the first request, in the background.</summary>
    public void WarmUp()
    {
        if (_primary is RedisRateLimitStore redis)
        {
            _warmUp = Task.Run(async () =>
            {
                try
                {
                    await redis.WarmUpAsync();
                    LogWarmedUp(_logger);
                }
                catch (Exception ex)
                {
                    // As after any failure: requests use the failure mode without waiting on Redis, until the retry.
                    MarkDown(probe: false, "warm-up", ex);
                }
            });
        }
    }

    /// <summary>True from <see cref="WarmUp"/> until the shared store's first round trip has succeeded or failed.</summary>
    public bool IsWarmingUp => _warmUp is { IsCompleted: false };

    /// <summary>Whether refusals (rather than a local fallback) follow when the shared store is down.</summary>
    public bool FailsClosed => _failClosed;

    public async ValueTask<RateLimitDecision> AcquireAsync(RateLimitRequest request)
    {
        if (TryEnterPrimary(out var probe))
        {
            try
            {
                var decision = await _primary.AcquireAsync(request);
                MarkUp(probe);
                return decision.Admitted ? RateLimitDecision.Admit(decision.Request, this, decision.Usage) : decision;
            }
            catch (Exception ex)
            {
                MarkDown(probe, "acquire", ex);
            }
        }

        if (_failClosed)
        {
            return RateLimitDecision.Reject(request, new RateLimitRejection(-1, RateLimitKind.StoreUnavailable, UntilRetry()),
                request.Scopes.Select(_ => default(ScopeUsage)).ToArray());
        }

        var share = request.DividedBy(_replicas);
        var local = await _fallback.AcquireAsync(share);
        if (local.Admitted)
        {
            _admittedByFallback[request.RequestId] = 0;
            return RateLimitDecision.Admit(local.Request, this, local.Usage);
        }
        if (local.Rejection is { NeverFits: true } never && request.Tokens <= request.Scopes[never.ScopeIndex].Limits.TokensPerMinute)
        {
            // Too big only for this replica's share: it fits the real limit once the shared store is back.
            return RateLimitDecision.Reject(local.Request, never with { RetryAfter = UntilRetry() }, local.Usage);
        }
        return local;
    }

    public async ValueTask CompleteAsync(RateLimitRequest request, long? actualTokens)
    {
        if (_admittedByFallback.TryRemove(request.RequestId, out _))
        {
            await _fallback.CompleteAsync(request, actualTokens);
            return;
        }
        try
        {
            await _primary.CompleteAsync(request, actualTokens);
        }
        catch (Exception ex)
        {
            // The reservation stays as it was, and the concurrency slot expires with its lease.
            MarkDown(probe: false, "complete", ex);
        }
    }

    public async ValueTask<IReadOnlyList<BudgetSpend>> RecordSpendAsync(string tenant, IReadOnlyList<RateLimitScope> scopes, decimal costUsd, BudgetPeriods periods)
    {
        if (TryEnterPrimary(out var probe))
        {
            try
            {
                var totals = await _primary.RecordSpendAsync(tenant, scopes, costUsd, periods);
                MarkUp(probe);
                return totals;
            }
            catch (Exception ex)
            {
                MarkDown(probe, "record spend", ex);
            }
        }

        // The money was spent whatever the failure mode: keep it for the shared totals, added when Redis is back.
        Defer(tenant, scopes, costUsd, periods);
        if (_failClosed)
        {
            LogSpendDeferred(_logger, tenant, costUsd);
            return [];
        }
        return await _fallback.RecordSpendAsync(tenant, scopes.Select(s => s.DividedBy(_replicas)).ToArray(), costUsd, periods);
    }

    /// <summary>Spend waiting to be added to the shared store, in USD (for tests and diagnostics).</summary>
    internal decimal DeferredSpendUsd
    {
        get
        {
            lock (_deferred)
            {
                return _deferred.Values.Sum(d => d.CostUsd);
            }
        }
    }

    /// <summary>The replay of deferred spend in progress, if any (for tests).</summary>
    internal Task SpendReplay => _replay ?? Task.CompletedTask;

    /// <summary>
    /// Adds spend the shared store could not take to the pending sum of its tenant, scopes and periods. One entry per
    /// such combination, so an outage of any length holds a handful of sums, not a record per request.
    /// </summary>
    private void Defer(string tenant, IReadOnlyList<RateLimitScope> scopes, decimal costUsd, BudgetPeriods periods)
    {
        var key = string.Join('\n', [tenant, periods.Day.Id, periods.Month.Id, .. scopes.Select(s => s.Key)]);
        lock (_deferred)
        {
            if (_deferred.TryGetValue(key, out var pending))
            {
                pending.CostUsd += costUsd;
            }
            else
            {
                _deferred[key] = new DeferredSpend(tenant, scopes, periods) { CostUsd = costUsd };
            }
        }
    }

    private void ReplayDeferredSpend()
    {
        lock (_deferred)
        {
            if (_deferred.Count == 0 || _replay is { IsCompleted: false })
            {
                return;
            }
            _replay = Task.Run(ReplayAsync);
        }
    }

    private async Task ReplayAsync()
    {
        KeyValuePair<string, DeferredSpend>[] batch;
        lock (_deferred)
        {
            batch = [.. _deferred];
            _deferred.Clear();
        }
        var replayed = 0;
        foreach (var (key, spend) in batch)
        {
            try
            {
                await _primary.RecordSpendAsync(spend.Tenant, spend.Scopes, spend.CostUsd, spend.Periods);
                replayed++;
            }
            catch (Exception ex)
            {
                // Put back what is left (this entry included: a timeout may have hidden a success, and counting spend
                // twice errs on the side of the budget), to be replayed at the next recovery.
                lock (_deferred)
                {
                    foreach (var (restoreKey, restore) in batch.Skip(replayed))
                    {
                        if (_deferred.TryGetValue(restoreKey, out var newer))
                        {
                            newer.CostUsd += restore.CostUsd;
                        }
                        else
                        {
                            _deferred[restoreKey] = restore;
                        }
                    }
                }
                MarkDown(probe: false, "replay spend", ex);
                return;
            }
        }
        LogSpendReplayed(_logger, replayed);
    }

    private bool TryEnterPrimary(out bool probe)
    {
        probe = false;
        lock (_gate)
        {
            if (!_down)
            {
                return true;
            }
            if (_time.GetTimestamp() < _retryAt || _probing != 0)
            {
                return false;
            }
            _probing = 1;
            probe = true;
            return true;
        }
    }

    private void MarkUp(bool probe)
    {
        bool recovered;
        lock (_gate)
        {
            recovered = _down;
            _down = false;
            if (probe)
            {
                _probing = 0;
            }
        }
        if (recovered)
        {
            LogRecovered(_logger);
        }
        ReplayDeferredSpend();
    }

    private void MarkDown(bool probe, string operation, Exception exception)
    {
        bool wasUp;
        lock (_gate)
        {
            wasUp = !_down;
            _down = true;
            _retryAt = _time.GetTimestamp() + (long)(_retryInterval.TotalSeconds * _time.TimestampFrequency);
            if (probe)
            {
                _probing = 0;
            }
        }
        _metrics?.StoreFailed(operation);
        if (wasUp)
        {
            LogDown(_logger, operation, _failClosed ? RateLimitFailureModes.Closed : RateLimitFailureModes.Local, _retryInterval.TotalSeconds, exception);
        }
        else
        {
            LogStillDown(_logger, operation, exception.Message);
        }
    }

    private TimeSpan UntilRetry()
    {
        long retryAt;
        lock (_gate)
        {
            retryAt = _retryAt;
        }
        var wait = _time.GetElapsedTime(_time.GetTimestamp(), retryAt);
        return wait > TimeSpan.FromSeconds(1) ? wait : TimeSpan.FromSeconds(1);
    }

    public async ValueTask DisposeAsync()
    {
        if (_primary is IAsyncDisposable primary)
        {
            await primary.DisposeAsync();
        }
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    [LoggerMessage(EventId = 5121, Level = LogLevel.Warning,
        Message = "Rate limit store unavailable during {Operation}; failure mode '{FailureMode}' for the next {RetrySeconds} s")]
    private static partial void LogDown(ILogger logger, string operation, string failureMode, double retrySeconds, Exception exception);

    [LoggerMessage(EventId = 5122, Level = LogLevel.Debug, Message = "Rate limit store still unavailable during {Operation}: {Error}")]
    private static partial void LogStillDown(ILogger logger, string operation, string error);

    [LoggerMessage(EventId = 5123, Level = LogLevel.Information, Message = "Rate limit store available again")]
    private static partial void LogRecovered(ILogger logger);

    [LoggerMessage(EventId = 5125, Level = LogLevel.Information, Message = "Rate limit store reached Redis; ready")]
    private static partial void LogWarmedUp(ILogger logger);

    [LoggerMessage(EventId = 5124, Level = LogLevel.Warning, Message = "Spend of {CostUsd} USD for tenant {Tenant} kept in memory until the rate limit store is available again")]
    private static partial void LogSpendDeferred(ILogger logger, string tenant, decimal costUsd);

    [LoggerMessage(EventId = 5126, Level = LogLevel.Information, Message = "Added the spend of {Count} tenant scope(s) recorded during the outage to the rate limit store")]
    private static partial void LogSpendReplayed(ILogger logger, int count);

    private sealed class DeferredSpend(string tenant, IReadOnlyList<RateLimitScope> scopes, BudgetPeriods periods)
    {
        public string Tenant { get; } = tenant;
        public IReadOnlyList<RateLimitScope> Scopes { get; } = scopes;
        public BudgetPeriods Periods { get; } = periods;
        public decimal CostUsd { get; set; }
    }
}
