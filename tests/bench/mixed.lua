-- wrk script, mixed load: 80% UpdateUserProfile of an existing user with
-- expectedVersion, 20% CreateUser of a new one. The users are seed-0 ..
-- seed-<MIX_AGGREGATES - 1> at version 1 (`command_bench seed`); each wrk
-- thread updates its own share of them (seed-i with i % threads == its
-- number) and learns each one's version from the answers, so a 409 comes from
-- two of its connections racing on one user, as it would from real clients.
-- After a 409 the next update of that user goes without expectedVersion.
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  nthreads = #threads > 0 and #threads or 2
  aggregates = tonumber(os.getenv("MIX_AGGREGATES") or "10000")
  versions = {}
  run = tostring(os.time()) .. "-" .. tostring(tid)
  math.randomseed(os.time() + tid)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  if math.random() < 0.2 then
    return wrk.format(nil, "/v1/commands", nil, string.format(
      '{"commandType":"CreateUser","commandId":"mix-%s-%d","email":"m%d@example.com","name":"Mixed %d"}',
      run, counter, counter, counter))
  end
  local i = math.random(0, math.floor((aggregates - 1 - tid) / nthreads)) * nthreads + tid
  local id = "seed-" .. i
  local v = versions[id]
  if v == nil and versions[id .. "#conflict"] == nil then v = 1 end
  local expected = ""
  if v ~= nil then
    expected = string.format(',"expectedVersion":%d', v)
    versions[id] = v + 1 -- optimistic: the next update of it expects this one applied
  end
  return wrk.format(nil, "/v1/commands", nil, string.format(
    '{"commandType":"UpdateUserProfile","commandId":"mix-%s-%d","aggregateId":"%s"%s,"changes":{"name":"N %d"}}',
    run, counter, id, expected, counter))
end

function response(status, headers, body)
  local id = body:match('"aggregateId":"(seed%-%d+)"')
  if id == nil then return end
  if status == 409 then
    versions[id] = nil
    versions[id .. "#conflict"] = true
  elseif status == 201 then
    local v = tonumber(body:match('"version":(%d+)'))
    if v ~= nil and v > (versions[id] or 0) then
      versions[id] = v
      versions[id .. "#conflict"] = nil
    end
  end
end

function done(summary, latency, requests)
  io.write(string.format("p999_ms=%.2f\n", latency:percentile(99.9) / 1000.0))
end
