-- wrk script: the mix of requests a dashboard page load makes (SPEC §3 A–J), over several
-- periods, each with a comparison period. Nothing is cached in Tally, so every request is a
-- full query. TALLY_CLIENT is the client id; TALLY_MIX picks the set: "dashboard" (default),
-- "light" (summary cards only) or "heavy" (the users dimension over a year).
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
  heavy = { "utilization/users?granularity=monthly&" },
}
local list = endpoints[mix]
local paths = {}
for _, e in ipairs(list) do
  for _, p in ipairs(periods) do
    if mix ~= "heavy" or p:find("start_date=2025-01-01", 1, true) then table.insert(paths, base .. e .. p) end
  end
end
local i = 0
local headers = { ["Authorization"] = "Bearer YOUR_API_TOKEN" }
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1], headers)
end
response = function(status)
  if status ~= 200 then error("unexpected status " .. status) end
end
-- After the run: the tail wrk's --latency summary leaves out.
done = function(summary, latency, requests)
  io.write(string.format("  p99.9 %.2fms\n", latency:percentile(99.9) / 1000))
end
