-- Tests of ../loyalty.lua: `crm rules test plugins/hotel/scripts/tests/loyalty_test.lua`.
-- Run against the real crm and hotel plugins (their types, handlers and nights):
--   crm rules test --conf plugins.conf FILE   (plugins/hotel/tests/test_a_rules.py does)
local rooms = 0
-- A room of its own for each stay, so no two stays of a test want the same night.
local function room(rate)
  rooms = rooms + 1
  local rt = t.create("hotel.room_type", { code = "T" .. rooms, name = "Room", capacity = 4,
                                            base_rate = rate or "100.00" })
  return t.create("hotel.room", { number = tostring(100 + rooms), room_type = rt.id }).id
end

-- A stay of `nights` nights checked out with a folio of `folio`: the room costs nothing
-- and one service makes the folio (the plugin closes it at check-out: what the rule reads).
local function stay(guest, nights, folio)
  local r = t.create("hotel.reservation", { room = room("0.00"), guest = guest.id,
                                            arrival = "2024-01-01",
                                            departure = string.format("2024-01-%02d", 1 + nights),
                                            status = "checked_in" })
  if tonumber(folio) > 0 then
    local svc = t.create("hotel.service", { code = "S" .. r.id, name = "Spa", price = folio })
    t.create("hotel.charge", { reservation = r.id, service = svc.id, quantity = 1 })
  end
  return t.update("hotel.reservation", r.id, { status = "checked_out" })
end

t.test("check-out earns 10 points a night and 1 per 10 spent, and the tier follows", function()
  local g = t.create("hotel.guest", { name = "Ada", loyalty_points = 480 })
  local r = stay(g, 4, "505.50")
  local entries = t.find("hotel.loyalty_entry", { guest = g.id })
  t.assert_eq(#entries, 1, "one entry")
  t.assert_eq(entries[1].points, 40 + 50, "4 nights + 505.50 spent")
  t.assert_eq(entries[1].kind, "earn")
  t.assert_eq(entries[1].reservation, r.id)
  local after = t.get("hotel.guest", g.id)
  t.assert_eq(after.loyalty_points, 570, "balance")
  t.assert_eq(after.loyalty_tier, "silver", "500 points or more: silver")
end)

t.test("thresholds: gold from 2000, platinum from 5000", function()
  local g = t.create("hotel.guest", { name = "Bo", loyalty_points = 1990 })
  stay(g, 1, "0")
  t.assert_eq(t.get("hotel.guest", g.id).loyalty_tier, "gold")
  local p = t.create("hotel.guest", { name = "Cy", loyalty_points = 4000 })
  stay(p, 30, "9000.00")
  t.assert_eq(t.get("hotel.guest", p.id).loyalty_points, 4000 + 300 + 900)
  t.assert_eq(t.get("hotel.guest", p.id).loyalty_tier, "platinum")
end)

t.test("a tier is never lowered by a small balance after redemptions", function()
  local g = t.create("hotel.guest", { name = "Di", loyalty_points = 10, loyalty_tier = "gold" })
  stay(g, 1, "50.00")
  local after = t.get("hotel.guest", g.id)
  t.assert_eq(after.loyalty_points, 25)
  t.assert_eq(after.loyalty_tier, "gold")
end)

t.test("only the check-out earns: a cancellation earns nothing", function()
  local g = t.create("hotel.guest", { name = "Ed" })
  local r = t.create("hotel.reservation", { room = room(), guest = g.id, nights = 3, arrival = "2024-01-01",
                                            departure = "2024-01-04" })
  t.update("hotel.reservation", r.id, { status = "cancelled" })
  t.assert_eq(#t.find("hotel.loyalty_entry"), 0)
  t.assert_eq(t.get("hotel.guest", g.id).loyalty_points, 0)
end)
