-- wrk script of the overhead benchmark: POST /v1/chat/completions with a JSON body.
-- Arguments (after --): <model> <same|unique> <nonce> [header "Name: value"]...
-- "unique" sends a new prompt on every request (a cache miss through a caching gateway; the same work for the
-- others), "same" repeats one prompt (a cache hit once the first answer is stored). The nonce keeps one run's
-- prompts from repeating another's.
-- done() prints machine-readable lines the harness parses: one RESULT line and one LAT line per distinct latency
-- (microseconds and count), so rounds can be merged into one histogram before percentiles are taken.
local model, mode, nonce
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  model, mode, nonce = args[1], args[2] or "unique", args[3] or "0"
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  for i = 4, #args do
    local name, value = args[i]:match("^([^:]+):%s*(.*)$")
    if name then wrk.headers[name] = value end
  end
  wrk.body = body("overhead benchmark prompt")
end

function body(content)
  return string.format('{"model":"%s","messages":[{"role":"user","content":"%s"}],"max_tokens":64}', model, content)
end

function request()
  if mode == "unique" then
    counter = counter + 1
    return wrk.format(nil, nil, nil, body(string.format("overhead benchmark prompt %s %d %d", nonce, id or 0, counter)))
  end
  return wrk.format()
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout))
  for i = 1, #latency do
    local value, count = latency(i)
    io.write(string.format("LAT %d %d\n", value, count))
  end
end
