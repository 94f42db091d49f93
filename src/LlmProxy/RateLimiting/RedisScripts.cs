namespace LlmProxy.RateLimiting;

/// <summary>
/// The Lua scripts of the Redis store. Each runs atomically on the server, so N replicas checking and consuming the
/// same counters can never both take the last slot. The semantics are those of <see cref="LocalRateLimitStore"/>
/// (sliding 60-second logs, all-or-nothing across scopes, the same choice of refusal to report); the contract tests
/// run against both.
/// <para>
/// Keys of one request all carry the tenant as a hash tag (<c>{tenant}</c>), so the scripts also work on Redis Cluster.
/// Per scope: <c>r</c> request log (sorted set, member = request id, score = ms), <c>tz</c> token log (same), <c>th</c>
/// token amounts (hash: request id → tokens, plus the running total in field <c>#sum</c>), <c>c</c> concurrency slots
/// (sorted set, score = lease expiry), <c>bd:{yyyyMMdd}</c> / <c>bm:{yyyyMM}</c> spend in nano-dollars (integers: exact,
/// unlike INCRBYFLOAT).
/// </para>
/// <para>
/// <c>now</c> is passed as -1 to use the Redis server's clock (<c>TIME</c>): one clock for every replica, so windows are
/// exact whatever the replicas' clock skew. A value ≥ 0 is the caller's clock in Unix milliseconds (the <c>gateway</c>
/// clock mode, and tests with a fake clock).
/// </para>
/// </summary>
internal static class RedisScripts
{
    private const string Clock = """
        local now = tonumber(ARGV[1])
        if now < 0 then
          if redis.replicate_commands then redis.replicate_commands() end
          local t = redis.call('TIME')
          now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        end
        """;

    /// <summary>
    /// KEYS: 6 per scope (r, tz, th, c, bd, bm). ARGV: now, window ms, lease ms, request id, tokens, scope count,
    /// ms to the end of the day, ms to the end of the month, concurrency retry ms, then 5 per scope: requests per
    /// minute, tokens per minute, concurrent requests, daily and monthly budget in nano-dollars (-1 = no limit).
    /// Returns: admitted (1/0), refusing scope index (-1), refusal kind, retry ms (-1 = never fits), then 7 per scope:
    /// requests, requests reset ms, tokens, tokens reset ms, in flight, daily spend, monthly spend.
    /// </summary>
    public const string Acquire = Clock + """

        local window = tonumber(ARGV[2])
        local lease = tonumber(ARGV[3])
        local id = ARGV[4]
        local tokens = tonumber(ARGV[5])
        local n = tonumber(ARGV[6])
        local dayWait = tonumber(ARGV[7])
        local monthWait = tonumber(ARGV[8])
        local concurrencyWait = tonumber(ARGV[9])
        local horizon = now - window

        local function evict_requests(r)
          redis.call('ZREMRANGEBYSCORE', r, '-inf', horizon)
          return redis.call('ZCARD', r)
        end

        local function evict_tokens(tz, th)
          local expired = redis.call('ZRANGEBYSCORE', tz, '-inf', horizon)
          if #expired > 0 then
            local freed = 0
            for s = 1, #expired, 500 do
              local e = math.min(s + 499, #expired)
              local amounts = redis.call('HMGET', th, unpack(expired, s, e))
              for j = 1, #amounts do freed = freed + (tonumber(amounts[j]) or 0) end
              redis.call('HDEL', th, unpack(expired, s, e))
            end
            redis.call('ZREMRANGEBYSCORE', tz, '-inf', horizon)
            redis.call('HINCRBY', th, '#sum', -freed)
          end
          if redis.call('ZCARD', tz) == 0 then
            redis.call('DEL', th)
            return 0
          end
          return tonumber(redis.call('HGET', th, '#sum') or '0')
        end

        local function until_empty(key)
          local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
          if #newest == 0 then return 0 end
          return math.max(0, tonumber(newest[2]) + window - now)
        end

        local function requests_wait(r, count, limit)
          if count + 1 <= limit then return 0 end
          local entry = redis.call('ZRANGE', r, count - limit, count - limit, 'WITHSCORES')
          return math.max(0, tonumber(entry[2]) + window - now)
        end

        local function tokens_wait(tz, th, sum, limit)
          if tokens > limit then return -1 end
          local excess = sum + tokens - limit
          if excess <= 0 then return 0 end
          local entries = redis.call('ZRANGE', tz, 0, -1, 'WITHSCORES')
          local freed = 0
          for j = 1, #entries, 2 do
            freed = freed + (tonumber(redis.call('HGET', th, entries[j])) or 0)
            if freed >= excess then return math.max(0, tonumber(entries[j + 1]) + window - now) end
          end
          return window
        end

        local rejIndex, rejKind, rejWait = -1, '', 0
        local function consider(i, kind, wait)
          if rejIndex >= 0 and rejWait < 0 then return end
          if wait < 0 or rejIndex < 0 or wait > rejWait then
            rejIndex, rejKind, rejWait = i, kind, wait
          end
        end

        local counts, sums, inflight, daily, monthly = {}, {}, {}, {}, {}
        for i = 0, n - 1 do
          local k, a = i * 6, 10 + i * 5
          local rpm, tpm, conc = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
          local dayLimit, monthLimit = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
          counts[i], sums[i], inflight[i] = 0, 0, 0
          if tpm >= 0 then
            sums[i] = evict_tokens(KEYS[k + 2], KEYS[k + 3])
            local wait = tokens_wait(KEYS[k + 2], KEYS[k + 3], sums[i], tpm)
            if wait ~= 0 then consider(i, 'tokens', wait) end
          end
          if rpm >= 0 then
            counts[i] = evict_requests(KEYS[k + 1])
            local wait = requests_wait(KEYS[k + 1], counts[i], rpm)
            if wait > 0 then consider(i, 'requests', wait) end
          end
          if conc >= 0 then
            redis.call('ZREMRANGEBYSCORE', KEYS[k + 4], '-inf', now)
            inflight[i] = redis.call('ZCARD', KEYS[k + 4])
            if inflight[i] >= conc then consider(i, 'concurrency', concurrencyWait) end
          end
          daily[i] = redis.call('GET', KEYS[k + 5]) or '0'
          monthly[i] = redis.call('GET', KEYS[k + 6]) or '0'
          if dayLimit >= 0 and tonumber(daily[i]) >= dayLimit then consider(i, 'budget_daily', dayWait) end
          if monthLimit >= 0 and tonumber(monthly[i]) >= monthLimit then consider(i, 'budget_monthly', monthWait) end
        end

        local admitted = 0
        if rejIndex < 0 then
          admitted = 1
          for i = 0, n - 1 do
            local k, a = i * 6, 10 + i * 5
            if tonumber(ARGV[a]) >= 0 then
              redis.call('ZADD', KEYS[k + 1], now, id)
              redis.call('PEXPIRE', KEYS[k + 1], window * 2)
              counts[i] = counts[i] + 1
            end
            if tonumber(ARGV[a + 1]) >= 0 then
              redis.call('ZADD', KEYS[k + 2], now, id)
              redis.call('HSET', KEYS[k + 3], id, tokens)
              redis.call('HINCRBY', KEYS[k + 3], '#sum', tokens)
              redis.call('PEXPIRE', KEYS[k + 2], window * 2)
              redis.call('PEXPIRE', KEYS[k + 3], window * 2)
              sums[i] = sums[i] + tokens
            end
            if tonumber(ARGV[a + 2]) >= 0 then
              redis.call('ZADD', KEYS[k + 4], now + lease, id)
              redis.call('PEXPIRE', KEYS[k + 4], lease * 2)
              inflight[i] = inflight[i] + 1
            end
          end
        end

        local out = { admitted, rejIndex, rejKind, rejWait }
        for i = 0, n - 1 do
          local k = i * 6
          out[#out + 1] = counts[i]
          out[#out + 1] = until_empty(KEYS[k + 1])
          out[#out + 1] = sums[i]
          out[#out + 1] = until_empty(KEYS[k + 2])
          out[#out + 1] = inflight[i]
          out[#out + 1] = daily[i]
          out[#out + 1] = monthly[i]
        end
        return out
        """;

    /// <summary>
    /// Ends an admitted request. KEYS: 3 per scope (tz, th, c). ARGV: now, window ms, request id, actual tokens (-1 keeps
    /// the reservation), reserved tokens, then 2 per scope: has a token limit (1/0), has a concurrency limit (1/0).
    /// </summary>
    public const string Complete = Clock + """

        local window = tonumber(ARGV[2])
        local id = ARGV[3]
        local actual = tonumber(ARGV[4])
        local reserved = tonumber(ARGV[5])
        for i = 0, #KEYS / 3 - 1 do
          local k, a = i * 3, 6 + i * 2
          local tz, th, c = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
          if ARGV[a] == '1' and actual >= 0 then
            local at = redis.call('ZSCORE', tz, id)
            if at and tonumber(at) > now - window then
              local old = tonumber(redis.call('HGET', th, id) or '0')
              if actual ~= old then
                redis.call('HSET', th, id, actual)
                redis.call('HINCRBY', th, '#sum', actual - old)
              end
            elseif actual > reserved then
              -- The reservation has left the window (a request longer than the window): charge what it did not cover, now.
              local late = id .. '+'
              redis.call('ZADD', tz, now, late)
              redis.call('HSET', th, late, actual - reserved)
              redis.call('HINCRBY', th, '#sum', actual - reserved)
              redis.call('PEXPIRE', tz, window * 2)
              redis.call('PEXPIRE', th, window * 2)
            end
          end
          if ARGV[a + 1] == '1' then
            redis.call('ZREM', c, id)
          end
        end
        return 1
        """;

    /// <summary>Extends concurrency slots still held. KEYS: slot sets. ARGV: now, lease ms, then the request id held in each key.</summary>
    public const string Renew = Clock + """

        local lease = tonumber(ARGV[2])
        local renewed = 0
        for i = 1, #KEYS do
          if redis.call('ZSCORE', KEYS[i], ARGV[i + 2]) then
            redis.call('ZADD', KEYS[i], now + lease, ARGV[i + 2])
            redis.call('PEXPIRE', KEYS[i], lease * 2)
            renewed = renewed + 1
          end
        end
        return renewed
        """;

    /// <summary>Adds spend. KEYS: 2 per scope (bd, bm). ARGV: nano-dollars, daily key ttl ms, monthly key ttl ms. Returns the new totals.</summary>
    public const string Spend = """
        local out = {}
        for i = 1, #KEYS, 2 do
          out[#out + 1] = redis.call('INCRBY', KEYS[i], ARGV[1])
          redis.call('PEXPIRE', KEYS[i], ARGV[2])
          out[#out + 1] = redis.call('INCRBY', KEYS[i + 1], ARGV[1])
          redis.call('PEXPIRE', KEYS[i + 1], ARGV[3])
        end
        return out
        """;
}
