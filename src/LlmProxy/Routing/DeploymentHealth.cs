using LlmProxy.Configuration;
using Polly;
using Polly.CircuitBreaker;

namespace LlmProxy.Routing;

/// <summary>
/// Live state of one deployment: its breakers, 429 cool-down, operator override, and the statistics the
/// admin API shows. Two breakers guard a deployment: Polly's circuit breaker trips on the failure ratio over
/// the sampling window, and a consecutive-failure breaker trips on N failures in a row however slowly they
/// come (a hanging upstream fails once per timeout, too rarely for any ratio window). Both let a single
/// probe through after the break; the probe's success closes them.
/// </summary>
public sealed class DeploymentHealth
{
    private const double LatencyEwmaWeight = 0.2;
    private static readonly TimeSpan MaxCooldown = TimeSpan.FromMinutes(10);

    private readonly object _gate = new();
    private readonly TimeProvider _time;
    private readonly CircuitBreakerStateProvider _ratioState = new();
    private readonly CircuitBreakerManualControl _ratioControl = new();
    private DateTimeOffset? _ratioOpenUntil;

    private int _consecutiveFailures;
    private bool _consecutiveOpen;
    private DateTimeOffset _consecutiveOpenUntil;
    private bool _probeInFlight;
    private bool _drained;
    private DateTimeOffset _cooldownUntil;

    private int _inFlight;
    private long _successes;
    private long _failures;
    private double _latencyEwmaMs;
    private string? _lastError;
    private DateTimeOffset? _lastErrorAt;

    /// <param name="pipeline">
    /// Returns the pipeline for this instance, built with the given configuration. It must be a new one: Polly binds
    /// a breaker's state provider and manual control to the first pipeline built with them.
    /// </param>
    internal DeploymentHealth(Deployment deployment, TimeProvider time, Func<Action<ResiliencePipelineBuilder<AttemptResult>>, ResiliencePipeline<AttemptResult>> pipeline)
    {
        Deployment = deployment;
        _time = time;
        Pipeline = pipeline(builder =>
        {
            builder.TimeProvider = time;
            var breaker = deployment.Breaker;
            builder.AddCircuitBreaker(new CircuitBreakerStrategyOptions<AttemptResult>
            {
                FailureRatio = breaker.FailureRatio,
                MinimumThroughput = breaker.MinimumThroughput,
                SamplingDuration = breaker.SamplingDuration,
                BreakDuration = breaker.BreakDuration,
                ShouldHandle = args => ValueTask.FromResult(args.Outcome.Result?.CountsAsFailure == true),
                StateProvider = _ratioState,
                ManualControl = _ratioControl,
                OnOpened = args =>
                {
                    // A manual isolation (drain) has an infinite break duration.
                    var now = _time.GetUtcNow();
                    _ratioOpenUntil = args.IsManual || args.BreakDuration >= DateTimeOffset.MaxValue - now ? DateTimeOffset.MaxValue : now + args.BreakDuration;
                    StateChanged?.Invoke(this, BreakerState.Open, "failure ratio");
                    return ValueTask.CompletedTask;
                },
                OnHalfOpened = _ =>
                {
                    StateChanged?.Invoke(this, BreakerState.HalfOpen, "failure ratio");
                    return ValueTask.CompletedTask;
                },
                OnClosed = _ =>
                {
                    _ratioOpenUntil = null;
                    StateChanged?.Invoke(this, BreakerState.Closed, "failure ratio");
                    return ValueTask.CompletedTask;
                },
            });
        });
    }

    /// <summary>Raised on every breaker transition, with the rule that caused it.</summary>
    internal event Action<DeploymentHealth, BreakerState, string>? StateChanged;

    /// <summary>The deployment as last configured (a reload may replace it; its state carries over by id).</summary>
    public Deployment Deployment { get; internal set; }

    internal ResiliencePipeline<AttemptResult> Pipeline { get; }

    public int InFlight => Volatile.Read(ref _inFlight);

    public bool IsDrained => Volatile.Read(ref _drained);

    /// <summary>The state traffic sees: open while drained, cooling down, or while either breaker is open.</summary>
    public BreakerState State
    {
        get
        {
            var now = _time.GetUtcNow();
            lock (_gate)
            {
                if (_drained || now < _cooldownUntil)
                {
                    return BreakerState.Open;
                }
                var ratio = _ratioState.CircuitState;
                if (ratio is CircuitState.Open or CircuitState.Isolated)
                {
                    // Polly moves to half-open lazily, on the next execution after the break.
                    return _ratioOpenUntil is { } until && now >= until ? BreakerState.HalfOpen : BreakerState.Open;
                }
                if (_consecutiveOpen)
                {
                    return now >= _consecutiveOpenUntil ? BreakerState.HalfOpen : BreakerState.Open;
                }
                return ratio == CircuitState.HalfOpen ? BreakerState.HalfOpen : BreakerState.Closed;
            }
        }
    }

    /// <summary>Earliest time the deployment may take traffic again, or null if it can now.</summary>
    public DateTimeOffset? AvailableAt
    {
        get
        {
            var now = _time.GetUtcNow();
            lock (_gate)
            {
                if (_drained)
                {
                    return DateTimeOffset.MaxValue;
                }
                DateTimeOffset? at = null;
                if (now < _cooldownUntil)
                {
                    at = _cooldownUntil;
                }
                if (_consecutiveOpen && now < _consecutiveOpenUntil)
                {
                    at = Max(at, _consecutiveOpenUntil);
                }
                if (_ratioOpenUntil is { } ratioUntil && now < ratioUntil)
                {
                    at = Max(at, ratioUntil);
                }
                return at;
            }
        }
    }

    /// <summary>
    /// Claims the right to send one request. False while the deployment is out of rotation, or while the
    /// single half-open probe of the consecutive-failure breaker is already under way.
    /// </summary>
    internal bool TryEnter(out bool isProbe)
    {
        isProbe = false;
        var now = _time.GetUtcNow();
        lock (_gate)
        {
            if (_drained || now < _cooldownUntil)
            {
                return false;
            }
            if (_consecutiveOpen)
            {
                if (now < _consecutiveOpenUntil || _probeInFlight)
                {
                    return false;
                }
                _probeInFlight = true;
                isProbe = true;
                StateChanged?.Invoke(this, BreakerState.HalfOpen, "consecutive failures");
            }
            _inFlight++;
            return true;
        }
    }

    /// <summary>Records the outcome of a request admitted by <see cref="TryEnter"/>.</summary>
    internal void Exit(bool isProbe, AttemptResult? result)
    {
        var now = _time.GetUtcNow();
        BreakerState? transition = null;
        lock (_gate)
        {
            _inFlight--;
            if (isProbe)
            {
                _probeInFlight = false;
            }
            if (result is null || result.Disposition == AttemptDisposition.Cancelled)
            {
                return;
            }

            if (result.CountsAsFailure)
            {
                _failures++;
                _consecutiveFailures++;
                _lastError = result.Failure?.Reason ?? "stream_interrupted";
                _lastErrorAt = now;
                if (result.Failure is { ClientStatus: 429, RetryAfter: { } retryAfter } && retryAfter > TimeSpan.Zero)
                {
                    _cooldownUntil = now + (retryAfter < MaxCooldown ? retryAfter : MaxCooldown);
                }
                if (isProbe || (!_consecutiveOpen && _consecutiveFailures >= Deployment.ConsecutiveFailureThreshold))
                {
                    _consecutiveOpen = true;
                    _consecutiveOpenUntil = now + Deployment.Breaker.BreakDuration;
                    transition = BreakerState.Open;
                }
            }
            else
            {
                _successes++;
                _consecutiveFailures = 0;
                if (result.Disposition == AttemptDisposition.Served)
                {
                    var ms = result.Duration.TotalMilliseconds;
                    _latencyEwmaMs = _latencyEwmaMs == 0 ? ms : (LatencyEwmaWeight * ms) + ((1 - LatencyEwmaWeight) * _latencyEwmaMs);
                }
                if (_consecutiveOpen)
                {
                    _consecutiveOpen = false;
                    transition = BreakerState.Closed;
                }
            }
        }
        if (transition is { } state)
        {
            StateChanged?.Invoke(this, state, "consecutive failures");
        }
    }

    /// <summary>Operator drain: no traffic until <see cref="RecoverAsync"/>.</summary>
    internal async Task DrainAsync()
    {
        lock (_gate)
        {
            _drained = true;
        }
        await _ratioControl.IsolateAsync();
        StateChanged?.Invoke(this, BreakerState.Open, "drained by operator");
    }

    /// <summary>Operator recover: closes both breakers and clears any drain or cool-down now.</summary>
    internal async Task RecoverAsync()
    {
        lock (_gate)
        {
            _drained = false;
            _consecutiveOpen = false;
            _consecutiveFailures = 0;
            _cooldownUntil = default;
        }
        await _ratioControl.CloseAsync();
        _ratioOpenUntil = null;
        StateChanged?.Invoke(this, BreakerState.Closed, "recovered by operator");
    }

    /// <summary>Zeroes the statistics; breaker state is left as it is.</summary>
    internal void ResetStatistics()
    {
        lock (_gate)
        {
            _successes = 0;
            _failures = 0;
            _latencyEwmaMs = 0;
            _lastError = null;
            _lastErrorAt = null;
            if (!_consecutiveOpen)
            {
                _consecutiveFailures = 0;
            }
        }
    }

    public DeploymentHealthSnapshot Snapshot()
    {
        var state = State;
        var availableAt = AvailableAt;
        lock (_gate)
        {
            var total = _successes + _failures;
            return new DeploymentHealthSnapshot(
                Deployment.Id, Deployment.ModelName, Deployment.ProviderName, Deployment.Priority, Deployment.Weight, Deployment.IsEnabled,
                _drained ? "drained" : state switch { BreakerState.Open => "open", BreakerState.HalfOpen => "half_open", _ => "closed" },
                _inFlight, _successes, _failures, total == 0 ? null : (double)_successes / total,
                _latencyEwmaMs == 0 ? null : Math.Round(_latencyEwmaMs, 2), _consecutiveFailures, _lastError, _lastErrorAt,
                availableAt == DateTimeOffset.MaxValue ? null : availableAt,
                _time.GetUtcNow() < _cooldownUntil ? _cooldownUntil : null);
        }
    }

    private static DateTimeOffset Max(DateTimeOffset? a, DateTimeOffset b) => a is { } value && value > b ? value : b;
}

/// <summary>What <c>GET /admin/deployments</c> shows for one deployment.</summary>
public sealed record DeploymentHealthSnapshot(
    string Id, string Model, string Provider, int Priority, int Weight, bool Enabled, string State,
    int InFlight, long Successes, long Failures, double? SuccessRate, double? LatencyEwmaMs,
    int ConsecutiveFailures, string? LastError, DateTimeOffset? LastErrorAt, DateTimeOffset? OpenUntil, DateTimeOffset? CooldownUntil);
