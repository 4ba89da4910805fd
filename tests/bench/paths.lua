-- wrk script: GET a path drawn at random, per request, from the file given
-- after "--" (one path a line, e.g. "/v1/orders?status=Shipped"; written by
-- read_bench seed-lists).
local paths = {}
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then paths[#paths + 1] = line end
  end
  math.randomseed(os.time() * 100 + tid)
end

function request()
  return wrk.format("GET", paths[math.random(#paths)])
end
