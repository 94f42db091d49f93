using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using LlmProxy.Pipeline;

namespace LlmProxy.Caching;

/// <summary>
/// The response cache stage of the chat pipeline. For a request whose tenant and model have caching enabled it
/// answers from the store when it can (a hit: <see cref="ChatContext.CacheHit"/> set, <see cref="ChatContext.Usage"/>
/// left null because no tokens were spent), and otherwise lets the request go upstream and stores the answer
/// if it was successful and complete. Concurrent identical misses share one upstream call (<see cref="SingleFlight"/>).
/// A failing store never fails a request: the error is logged and counted and the request goes on as a miss.
/// </summary>
internal sealed partial class ResponseCacheMiddleware : IChatMiddleware
{
    private readonly ResponseCachePolicyProvider _policies;
    private readonly IResponseCacheStore _store;
    private readonly ResponseCacheMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger<ResponseCacheMiddleware> _logger;
    private readonly SingleFlight _flights = new();
    private readonly string _storeName;

    public ResponseCacheMiddleware(ResponseCachePolicyProvider policies, IResponseCacheStore store, ResponseCacheMetrics metrics,
        TimeProvider time, ILogger<ResponseCacheMiddleware> logger)
    {
        ArgumentNullException.ThrowIfNull(policies);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(metrics);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(logger);
        _policies = policies;
        _store = store;
        _metrics = metrics;
        _time = time;
        _logger = logger;
        _storeName = ResponseCacheMetrics.StoreName(store);
    }

    /// <summary>Requests currently leading a flight (for tests).</summary>
    internal int InFlight => _flights.Count;

    public Task InvokeAsync(ChatContext context, ChatDelegate next)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(next);
        var policy = _policies.Resolve(context.Identity.Tenant.Name, context.Route.Name);
        return policy.Enabled ? InvokeCachedAsync(context, next, policy) : next(context);
    }

    private async Task InvokeCachedAsync(ChatContext chat, ChatDelegate next, ResponseCachePolicy policy)
    {
        var http = chat.HttpContext;
        var aborted = http.RequestAborted;
        var controls = policy.AllowClientControls ? ClientCacheControls.Read(http.Request.Headers) : default;
        var ttl = controls.Ttl is { } requested && requested < policy.Ttl ? requested : policy.Ttl;
        var mayStore = !controls.NoStore;
        var key = ResponseCacheKey.Create(chat.Identity.Tenant.Name, chat.Route.Name, chat.Request.Body);

        if (controls.NoCache)
        {
            _metrics.Bypass(chat.Identity.Tenant.Name, chat.Route.Name);
            SetResultHeader(http.Response, ResponseCacheHeaders.Bypass);
            await ForwardAndStoreAsync(chat, next, key, policy, ttl, mayStore);
            return;
        }

        while (true)
        {
            if (_flights.TryGet(key, out var existing))
            {
                byte[]? shared;
                try
                {
                    shared = await existing.Result.WaitAsync(aborted);
                }
                catch (OperationCanceledException) when (aborted.IsCancellationRequested)
                {
                    chat.ErrorCode ??= "client_disconnected";
                    return;
                }
                if (shared is not null && await TryServeHitAsync(chat, shared))
                {
                    return;
                }
                // The leader got no storable answer: go upstream alone rather than queue behind another leader.
                await MissAsync(chat, next, key, policy, ttl, mayStore);
                return;
            }

            if (!mayStore)
            {
                // A request whose answer will not be stored cannot lead others; it may still be answered from the store.
                var found = await LookupAsync(key, aborted);
                if (found is not null && await TryServeHitAsync(chat, found))
                {
                    return;
                }
                await MissAsync(chat, next, key, policy, ttl, mayStore: false);
                return;
            }

            if (_flights.TryLead(key, out var flight))
            {
                await LeadAsync(chat, next, key, policy, ttl, flight);
                return;
            }
            // Another request became the leader between the two checks: follow it.
        }
    }

    private async Task LeadAsync(ChatContext chat, ChatDelegate next, string key, ResponseCachePolicy policy, TimeSpan ttl, Flight flight)
    {
        byte[]? entry = null;
        var fetched = false;
        try
        {
            entry = await LookupAsync(key, chat.HttpContext.RequestAborted);
            if (entry is null || !CacheEntry.TryRead(entry, out _, out _))
            {
                entry = null;
                _metrics.Miss(chat.Identity.Tenant.Name, chat.Route.Name);
                SetResultHeader(chat.HttpContext.Response, ResponseCacheHeaders.Miss);
                fetched = true;
                entry = await ForwardAsync(chat, next, policy);
            }
        }
        finally
        {
            // Never leave followers waiting, whatever happened to this request.
            flight.Complete(entry);
            if (!fetched || entry is null)
            {
                _flights.Release(key, flight);
            }
        }

        if (fetched)
        {
            if (entry is null)
            {
                return;
            }
            // The flight stays registered until the entry is stored, so requests arriving meanwhile are served from it.
            _ = StoreAsync(key, entry, ttl, flight);
        }
        else if (!await TryServeHitAsync(chat, entry!))
        {
            await MissAsync(chat, next, key, policy, ttl, mayStore: true);
        }
    }

    private async Task MissAsync(ChatContext chat, ChatDelegate next, string key, ResponseCachePolicy policy, TimeSpan ttl, bool mayStore)
    {
        _metrics.Miss(chat.Identity.Tenant.Name, chat.Route.Name);
        SetResultHeader(chat.HttpContext.Response, ResponseCacheHeaders.Miss);
        await ForwardAndStoreAsync(chat, next, key, policy, ttl, mayStore);
    }

    private async Task ForwardAndStoreAsync(ChatContext chat, ChatDelegate next, string key, ResponseCachePolicy policy, TimeSpan ttl, bool mayStore)
    {
        if (!mayStore)
        {
            await next(chat);
            return;
        }
        var entry = await ForwardAsync(chat, next, policy);
        if (entry is not null)
        {
            _ = StoreAsync(key, entry, ttl, flight: null);
        }
    }

    /// <summary>Runs the rest of the pipeline, watching the response; returns the entry to store, or null.</summary>
    private async Task<byte[]?> ForwardAsync(ChatContext chat, ChatDelegate next, ResponseCachePolicy policy)
    {
        var capture = new ResponseCapture(policy.MaxEntryBytes);
        chat.ResponseObservers.Add(capture);
        try
        {
            await next(chat);
        }
        finally
        {
            chat.ResponseObservers.Remove(capture);
        }

        if (chat.HttpContext.Response.StatusCode != StatusCodes.Status200OK || chat.ErrorCode is not null)
        {
            LogNotStored(_logger, chat.Route.Name, chat.ErrorCode ?? "status_" + chat.HttpContext.Response.StatusCode.ToString(CultureInfo.InvariantCulture));
            return null;
        }
        var completion = capture.TryGetCompletion(chat.Request.Stream, chat.Usage);
        if (completion is null)
        {
            LogNotStored(_logger, chat.Route.Name, capture.RejectionReason ?? "unknown");
            return null;
        }
        return CacheEntry.Create(completion, _time.GetUtcNow());
    }

    private async ValueTask<byte[]?> LookupAsync(string key, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            var value = await _store.GetAsync(key, cancellationToken);
            RecordDuration("get", started);
            return value;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception ex)
        {
            RecordDuration("get", started);
            _metrics.StoreError(_storeName, "get");
            LogStoreFailed(_logger, _storeName, "get", ex);
            return null;
        }
    }

    private async Task StoreAsync(string key, byte[] entry, TimeSpan ttl, Flight? flight)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            // Not the request's token: the response is complete, and the entry is worth keeping even if the client has gone.
            await _store.SetAsync(key, entry, ttl, CancellationToken.None);
            RecordDuration("set", started);
        }
        catch (Exception ex)
        {
            RecordDuration("set", started);
            _metrics.StoreError(_storeName, "set");
            LogStoreFailed(_logger, _storeName, "set", ex);
        }
        finally
        {
            if (flight is not null)
            {
                _flights.Release(key, flight);
            }
        }
    }

    /// <summary>Answers the request from <paramref name="entry"/>; false (nothing written) when the entry is unreadable.</summary>
    private async Task<bool> TryServeHitAsync(ChatContext chat, byte[] entry)
    {
        if (!CacheEntry.TryRead(entry, out var storedAt, out var body))
        {
            _metrics.StoreError(_storeName, "read");
            LogUnreadableEntry(_logger, _storeName);
            return false;
        }
        var http = chat.HttpContext;
        var response = http.Response;
        var age = Math.Max(0, (long)(_time.GetUtcNow() - storedAt).TotalSeconds).ToString(CultureInfo.InvariantCulture);

        if (chat.Request.Stream)
        {
            List<JsonObject> chunks;
            try
            {
                chunks = CachedResponseReplay.ToChunks(body.Span, chat.Request.IncludeUsage);
            }
            catch (JsonException)
            {
                _metrics.StoreError(_storeName, "read");
                LogUnreadableEntry(_logger, _storeName);
                return false;
            }
            chat.CacheHit = true;
            _metrics.Hit(chat.Identity.Tenant.Name, chat.Route.Name);
            var events = new ArrayBufferWriter<byte>(body.Length * 2 + 512);
            var ranges = CachedResponseReplay.WriteEvents(chunks, events);
            foreach (var observer in chat.ResponseObservers)
            {
                foreach (var range in ranges)
                {
                    observer.OnChunk(events.WrittenSpan[range]);
                }
                observer.OnStreamEnd(completed: true);
            }
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = "text/event-stream; charset=utf-8";
            response.Headers.CacheControl = "no-cache";
            response.Headers["X-Accel-Buffering"] = "no";
            response.Headers[ResponseCacheHeaders.Result] = ResponseCacheHeaders.Hit;
            response.Headers.Age = age;
            chat.TimeToFirstToken = chat.Elapsed;
            await response.Body.WriteAsync(events.WrittenMemory, http.RequestAborted);
            return true;
        }

        chat.CacheHit = true;
        _metrics.Hit(chat.Identity.Tenant.Name, chat.Route.Name);
        foreach (var observer in chat.ResponseObservers)
        {
            observer.OnResponse(body);
        }
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/json";
        response.ContentLength = body.Length;
        response.Headers[ResponseCacheHeaders.Result] = ResponseCacheHeaders.Hit;
        response.Headers.Age = age;
        await response.Body.WriteAsync(body, http.RequestAborted);
        return true;
    }

    private void RecordDuration(string operation, long started) => _metrics.StoreDuration(_storeName, operation, Stopwatch.GetElapsedTime(started));

    /// <summary>
    /// Sets the result header when the response starts rather than now: the upstream dispatcher clears the
    /// response's headers between failover attempts.
    /// </summary>
    private static void SetResultHeader(HttpResponse response, string value) =>
        response.OnStarting(static state =>
        {
            var (target, result) = ((HttpResponse, string))state;
            target.Headers[ResponseCacheHeaders.Result] = result;
            return Task.CompletedTask;
        }, (response, value));

    [LoggerMessage(EventId = 4001, Level = LogLevel.Warning, Message = "Response cache: the {Store} store failed to {Operation}; the request goes on without the cache")]
    private static partial void LogStoreFailed(ILogger logger, string store, string operation, Exception exception);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Warning, Message = "Response cache: an entry in the {Store} store is unreadable; treated as a miss")]
    private static partial void LogUnreadableEntry(ILogger logger, string store);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Debug, Message = "Response cache: response for model {Model} not stored ({Reason})")]
    private static partial void LogNotStored(ILogger logger, string model, string reason);
}
