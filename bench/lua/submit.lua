-- POST /api/v1/inquiries with realistic 1-5 KB Unicode bodies, each unique,
-- each from its own client address (X-Forwarded-For; the server must trust
-- the loopback proxy). BODY=empty sends "{}" instead (refused after the
-- rate limiter, writes nothing).
-- The sample phrases, shared with examples/loadgen.rs (bench/lib.py sets PHRASES
-- to the file's path).
local phrases = {}
for line in io.lines(os.getenv("PHRASES")) do
  table.insert(phrases, line)
end
local thread_id = 0
local counter = 0
local empty = os.getenv("BODY") == "empty"
local form = os.getenv("FORM")
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  thread_id = tid or 1
  math.randomseed(thread_id * 7919)
  bodies = {}
  for i = 1, 32 do
    local parts = {}
    local size = 0
    local target = math.random(1000, 5000)
    while size < target do
      local p = phrases[math.random(#phrases)]
      table.insert(parts, p)
      size = size + #p
    end
    bodies[i] = table.concat(parts)
  end
end

function request()
  counter = counter + 1
  local n = thread_id * 16777216 + counter
  local ip = string.format("%d.%d.%d.%d", 11 + thread_id, math.floor(counter / 65536) % 256,
    math.floor(counter / 256) % 256, counter % 256)
  local headers = { ["Content-Type"] = "application/json", ["X-Forwarded-For"] = ip }
  if empty then
    return wrk.format("POST", "/api/v1/inquiries", headers, "{}")
  end
  local body = string.format(
    '{"name":"Посетитель %d","email":"visitor%d@example.org","subject":"关于合作 %d","message":"%s %d","category":"question"',
    n, n, n, bodies[counter % 32 + 1], n)
  if form then
    -- FORM=<id>: the form of bench/forms, with its ten custom fields of every type.
    body = body .. string.format(
      ',"affiliation":"Университет %d","topic":"Финтех и 数据 %d","contact_email":"office%d@example.org",' ..
      '"website":"https://example.org/%d","guests":%d,"arrival":"2026-06-%02d","session":"Fintech workshop",' ..
      '"vegetarian":true,"notes":"%s","city":"Алматы"}',
      n, n, n, n, n % 4, n % 28 + 1, phrases[counter % #phrases + 1])
    return wrk.format("POST", "/api/v1/forms/" .. form .. "/inquiries", headers, body)
  end
  return wrk.format("POST", "/api/v1/inquiries", headers, body .. "}")
end
