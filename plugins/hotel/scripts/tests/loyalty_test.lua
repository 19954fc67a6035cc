-- Tests of ../loyalty.lua: `crm rules test plugins/hotel/scripts/tests/loyalty_test.lua`.
-- The types the hotel rules read and write, as the crm and hotel plugins declare them
-- (only the fields the rules use; references as ids).
t.define_type("crm.contact", { { name = "first_name", kind = "text" },
                               { name = "email", kind = "email" } })
t.define_type("crm.message", {
  { name = "to", kind = "email", required = true }, { name = "subject", kind = "text" },
  { name = "body", kind = "text", max_length = 200000 }, { name = "contact", kind = "int" },
  { name = "related_type", kind = "text" }, { name = "related_id", kind = "int" } })
t.define_type("hotel.room", { { name = "number", kind = "text" } })
t.define_type("hotel.guest", {
  { name = "name", kind = "text", required = true }, { name = "email", kind = "email" },
  { name = "contact", kind = "int" }, { name = "birthday", kind = "date" },
  { name = "loyalty_points", kind = "int", default = 0 },
  { name = "loyalty_tier", kind = "enum", values = { "member", "silver", "gold", "platinum" },
    default = "member" } })
t.define_type("hotel.reservation", {
  { name = "guest", kind = "int" }, { name = "room", kind = "int" },
  { name = "arrival", kind = "date" }, { name = "departure", kind = "date" },
  { name = "nights", kind = "int" }, { name = "room_total", kind = "decimal", scale = 2 },
  { name = "folio_total", kind = "decimal", scale = 2 },
  { name = "checked_out_at", kind = "datetime" },
  { name = "status", kind = "enum", default = "booked",
    values = { "booked", "checked_in", "checked_out", "cancelled", "no_show" } } })
t.define_type("hotel.loyalty_entry", {
  { name = "guest", kind = "int", required = true }, { name = "reservation", kind = "int" },
  { name = "points", kind = "int", required = true },
  { name = "kind", kind = "enum", values = { "earn", "redeem", "adjust" }, default = "earn" },
  { name = "reason", kind = "text", required = true, max_length = 500 } })

local function stay(guest, nights, folio)
  local r = t.create("hotel.reservation", { guest = guest.id, arrival = "2024-01-01",
                                            departure = "2024-01-05", nights = nights,
                                            status = "checked_in" })
  return t.update("hotel.reservation", r.id, { status = "checked_out", folio_total = folio })
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
  local r = t.create("hotel.reservation", { guest = g.id, nights = 3, arrival = "2024-01-01",
                                            departure = "2024-01-04" })
  t.update("hotel.reservation", r.id, { status = "cancelled" })
  t.assert_eq(#t.find("hotel.loyalty_entry"), 0)
  t.assert_eq(t.get("hotel.guest", g.id).loyalty_points, 0)
end)
