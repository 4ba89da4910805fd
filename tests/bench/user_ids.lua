-- wrk script: GET /v1/users/<id> with an id drawn at random, per request, from
-- the file given after "--" (one id a line; written by read_bench seed-events).
local ids = {}
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then ids[#ids + 1] = line end
  end
  math.randomseed(os.time() * 100 + tid)
end

function request()
  return wrk.format("GET", "/v1/users/" .. ids[math.random(#ids)])
end
