-- wrk script: the mix of requests a dashboard page load makes (SPEC §3 A–J), over several
-- periods, each with a comparison period. Nothing is cached in Tally, so every request is a
-- full query. TALLY_CLIENT is the client id; TALLY_MIX picks the set: "dashboard" (default),
-- "light" (summary cards only) or "heavy" (the most expensive lists of a year: the users
-- dimension under an approval filter sorted by app count ascending, which no stored order serves,
-- and — when TALLY_CATEGORY names a category — the users dimension restricted to that category's
-- apps and sorted by active days; 2.6–3.1 ms and 6–7 ms over curl on the 20,000-user client,
-- where the realistic mix's median is 0.3 ms by tools/load/profile_paths.py. The category list
-- under an approval filter was the first of them until it read derived unions: 0.4–0.5 ms);
-- TALLY_PATHS a file of paths instead.
local client = os.getenv("TALLY_CLIENT")
local mix = os.getenv("TALLY_MIX") or "dashboard"
local base = "/v2/clients/" .. client .. "/analytics/apps/"
local periods = {
  "start_date=2025-12-03&end_date=2026-01-01&compare_start_date=2025-11-03&compare_end_date=2025-12-02",
  "start_date=2025-10-04&end_date=2026-01-01&compare_start_date=2025-07-06&compare_end_date=2025-10-03",
  "start_date=2025-01-01&end_date=2026-01-01&compare_start_date=2024-01-01&compare_end_date=2024-12-31",
  "start_date=2025-06-01&end_date=2025-06-30&compare_start_date=2025-05-01&compare_end_date=2025-05-31",
}
local endpoints = {
  dashboard = {
    "utilization/summary?granularity=monthly&",
    "utilization?granularity=monthly&",
    "utilization/departments?granularity=monthly&is_approved=false&",
    "utilization/categories?granularity=monthly&",
    "utilization/trend?granularity=weekly&",
    "ai/users/summary?granularity=monthly&",
    "ai/users?",
    "ai/departments?granularity=monthly&",
    "ai/new?granularity=monthly&",
    "utilization/users?granularity=monthly&page_size=20&",
  },
  light = { "utilization/summary?granularity=monthly&", "ai/users/summary?granularity=monthly&" },
  heavy = { "utilization/users?granularity=monthly&sort_by=app_count&sort_order=asc&is_approved=true&" },
}
local category = os.getenv("TALLY_CATEGORY")
if category and category ~= "" then
  table.insert(endpoints.heavy, "utilization/users?granularity=monthly&sort_by=active_days&category_ids=" .. category .. "&")
end
local paths = {}
-- TALLY_PATHS=file: the paths to request, one per line, in turn (the realistic mix written by
-- tools/load/realistic_paths.py: filters, sorts, cursor pages, 7- to 366-day periods).
local file = os.getenv("TALLY_PATHS")
if file then
  for line in io.lines(file) do
    if line ~= "" then table.insert(paths, line) end
  end
else
  for _, e in ipairs(endpoints[mix]) do
    for _, p in ipairs(periods) do
      if mix ~= "heavy" or p:find("start_date=2025-01-01", 1, true) then table.insert(paths, base .. e .. p) end
    end
  end
end
local i = 0
local headers = { ["Authorization"] = "Bearer YOUR_API_TOKEN" }
-- Requests are formatted once: the load generator shares the machine's two cores with the
-- server, so it does as little per request as it can. Statuses are checked by wrk itself
-- ("Non-2xx or 3xx responses" in its summary; the run scripts fail on it) rather than by a
-- `response` hook, which would make wrk parse every header and body.
local requests = {}
for k, p in ipairs(paths) do requests[k] = wrk.format("GET", p, headers) end
request = function()
  i = i + 1
  return requests[(i % #requests) + 1]
end
-- TALLY_DELAY_MS: each connection waits this long before each request (a paced load, e.g. the
-- soak's 80% of peak: connections × 1000 / rate).
local pause = tonumber(os.getenv("TALLY_DELAY_MS") or "")
if pause then
  delay = function() return pause end
end
-- TALLY_RATE_PER_THREAD: a constant request rate for each wrk thread (requests a second),
-- whatever the latency: every request gets the next slot of a fixed schedule on the monotonic
-- clock (LuaJIT's FFI), and its connection waits for that slot. Closed-loop pacing with a fixed
-- pause (TALLY_DELAY_MS) gives a rate that moves with latency; this one does not, as long as the
-- connections are enough to keep up. Slots missed by more than a second are dropped, not
-- caught up in a burst.
local rate = tonumber(os.getenv("TALLY_RATE_PER_THREAD") or "")
if rate then
  local ffi = require("ffi")
  ffi.cdef[[
    typedef struct { long tv_sec; long tv_nsec; } tally_timespec;
    int clock_gettime(int clock, tally_timespec *out);
  ]]
  local ts = ffi.new("tally_timespec")
  local function now_ms()
    ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
  end
  local interval = 1000 / rate
  local slot = nil
  delay = function()
    local t = now_ms()
    if slot == nil or slot < t - 1000 then slot = t end
    slot = slot + interval
    local d = slot - t
    if d < 0 then return 0 end
    return d
  end
end
-- TALLY_RETRY_AFTER=1: a connection that gets 503 waits the second its Retry-After asks for, as
-- a well-behaved client does (without it, wrk re-sends at once: a storm of refusals). The 503s
-- are then expected and not counted as failures.
local polite = os.getenv("TALLY_RETRY_AFTER") == "1"
local wait_next = 0
local refused = 0
if polite then
  delay = function()
    local d = wait_next
    wait_next = pause or 0
    return d
  end
  response = function(status, headers, body)
    if status == 503 then
      refused = refused + 1
      wait_next = 1000
    end
  end
end
-- After the run: the tail wrk's --latency summary leaves out.
done = function(summary, latency, requests)
  io.write(string.format("  p99.9 %.2fms\n", latency:percentile(99.9) / 1000))
  if summary.errors.status > 0 and not polite then
    io.write(string.format("FAILED: %d responses were not 2xx\n", summary.errors.status))
    os.exit(1)
  end
end
