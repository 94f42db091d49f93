-- wrk script: POST /v1/chat/completions.
-- Arguments (after --): <api key|-> <model> <mode: same|unique> <stream: true|false> <nonce> [extra header "Name: value"]
-- "unique" sends a new prompt every request (every one a miss); the nonce keeps runs from repeating each other.
local key, model, mode, stream, nonce, extra
local thread_id = 0
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  key, model, mode, stream, nonce, extra = args[1], args[2], args[3] or "same", args[4] or "false", args[5] or "0", args[6]
  thread_id = id or 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if key and key ~= "-" then
    wrk.headers["Authorization"] = "Bearer " .. key
  end
  if extra then
    local name, value = extra:match("^([^:]+):%s*(.*)$")
    if name then wrk.headers[name] = value end
  end
  wrk.body = body("benchmark prompt")
end

function body(content)
  local s = ""
  if stream == "true" then s = ',"stream":true' end
  return string.format('{"model":"%s","messages":[{"role":"user","content":"%s"}]%s}', model, content, s)
end

function request()
  if mode == "unique" then
    counter = counter + 1
    return wrk.format(nil, nil, nil, body(string.format("miss %s %d %d", nonce, thread_id, counter)))
  end
  return wrk.format()
end
