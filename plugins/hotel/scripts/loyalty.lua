-- Loyalty club: points when a stay checks out, and the tier the balance reaches.
--
-- Points: 10 per night + 1 per 10 of the folio total (room and services). Tiers by
-- balance: member, silver from 500, gold from 2000, platinum from 5000. A tier is
-- earned: redeeming points (POST /guests/{id}/redeem) never lowers it. The entry and
-- the balance are written in the check-out's transaction: both or neither.

local POINTS_PER_NIGHT = 10
local SPEND_PER_POINT = 10
local TIERS = { { "platinum", 5000 }, { "gold", 2000 }, { "silver", 500 }, { "member", 0 } }
local RANK = { member = 1, silver = 2, gold = 3, platinum = 4 }

local function tier_for(points)
  for _, t in ipairs(TIERS) do
    if points >= t[2] then return t[1] end
  end
  return "member"
end

rule {
  name    = "hotel: loyalty points on check-out",
  on      = "hotel.reservation.updated",
  changed = "status", to = "checked_out",
  run     = function(ev)
    local r = ev.record
    local guest = crm.get("hotel.guest", r.guest)
    if not guest then return end
    local spent = tonumber(r.folio_total or r.room_total or "0") or 0
    local points = POINTS_PER_NIGHT * (r.nights or 0) +
                   math.tointeger(math.floor(spent / SPEND_PER_POINT))
    if points <= 0 then return end
    crm.create("hotel.loyalty_entry", {
      guest = guest.id, reservation = ev.id, points = points, kind = "earn",
      reason = string.format("stay %s to %s: %d nights, folio %s", r.arrival, r.departure,
                             r.nights or 0, r.folio_total or "0.00"),
    })
    local balance = (guest.loyalty_points or 0) + points
    local tier = tier_for(balance)
    local current = guest.loyalty_tier or "member"
    if (RANK[current] or 1) > RANK[tier] then tier = current end
    crm.update("hotel.guest", guest.id, { loyalty_points = balance, loyalty_tier = tier })
  end,
}
