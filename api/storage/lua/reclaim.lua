-- ARGV: lease prefix, now. The sweep of one project: ends the holds of up to 1000 expired
-- leases; returns {holds ended, 1 when more expired leases are left}.
local _, now_text = lease_clock(ARGV[2])
local ended, more = reclaim(now_text, 1000)
return {ended, more and 1 or 0}
