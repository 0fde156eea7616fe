-- One rate-limit check, atomically: GCRA as governor computes it for the memory
-- backend (src/limits/rate.rs), on Redis's clock so that the replicas' clocks
-- do not matter. Times in microseconds.
--   KEYS[1]  the key; its value is the theoretical arrival time (TAT)
--   ARGV[1]  t: the time one request's allowance takes to come back
--   ARGV[2]  tau: how far ahead of now the TAT may run, t * (burst - 1)
-- Returns {1, TAT - now} when allowed (the key then lives exactly until its
-- allowance is full again), {0, time until the next request is allowed} when not.
local t = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
local earliest = tat - tau
if now < earliest then
  return {0, earliest - now}
end
local next = math.max(tat, now) + t
redis.call('SET', KEYS[1], string.format('%d', next), 'PX', math.ceil((next - now) / 1000))
return {1, next - now}
