-- wrk script: every request a new CreateUser with a commandId unique across
-- threads and runs (and wrk processes run at once: pass each a tag after --).
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  run = tostring(os.time()) .. "-" .. (args[1] or "") .. tostring(tid)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"commandType":"CreateUser","commandId":"wrk-%s-%d","email":"w%d@example.com","name":"Wrk User %d"}',
    run, counter, counter, counter)
  return wrk.format(nil, "/v1/commands", nil, body)
end

function done(summary, latency, requests)
  io.write(string.format("p999_ms=%.2f\n", latency:percentile(99.9) / 1000.0))
end
