-- wrk script: one etcd v3 put per request through etcd's JSON gateway (POST /v3/kv/put),
-- unique keys per thread and request, a value of value_size bytes (set by the caller).
local counter = 0
local tid = 0
local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64(s)
  return ((s:gsub(".", function(x)
    local r, b = "", x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({"", "==", "="})[#s % 3 + 1])
end
local value
setup = function(thread)
  tid = tid + 1
  thread:set("tid", tid)
end
request = function()
  if value == nil then value = b64(string.rep("v", value_size)) end
  counter = counter + 1
  local body = '{"key":"' .. b64(string.format("k%d-%d-%d", run_id, tid, counter)) ..
    '","value":"' .. value .. '"}'
  return wrk.format("POST", "/v3/kv/put", {["Content-Type"] = "application/json"}, body)
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d errors=%d rps=%.0f p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.errors.status + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
