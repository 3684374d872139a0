-- wrk script: one user_register per request, unique ids per thread and request.
local counter = 0
local tid = 0
setup = function(thread)
  tid = tid + 1
  thread:set("tid", tid)
end
request = function()
  counter = counter + 1
  local uid = string.format("b%d-%d-%d", run_id, tid, counter)
  local body = '{"users":[{"userID":"' .. uid .. '","nickname":"' .. uid .. '"}]}'
  return wrk.format("POST", "/user/user_register",
    {["operationID"] = "bench", ["token"] = token, ["Content-Type"] = "application/json"}, body)
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d errors=%d rps=%.0f p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.errors.status + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
