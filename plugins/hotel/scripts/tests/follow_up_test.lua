-- Tests of ../follow_up.lua: `crm rules test plugins/hotel/scripts/tests/follow_up_test.lua`.
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

t.test("a day after check-out the guest is asked how the stay was", function()
  local g = t.create("hotel.guest", { name = "Ada", email = "ada@example.org" })
  local r = t.create("hotel.reservation", { guest = g.id, arrival = "2023-12-29",
                                            departure = "2024-01-01", status = "checked_in" })
  t.update("hotel.reservation", r.id, { status = "checked_out",
                                        checked_out_at = "2024-01-01T09:00:00Z" })
  t.advance(12 * 3600)
  t.assert_eq(#t.find("crm.message"), 0, "not the same day")
  t.advance(13 * 3600)
  local m = t.find("crm.message")
  t.assert_eq(#m, 1, "the next day")
  t.assert_eq(m[1].subject, "How was your stay?")
  t.assert_eq(m[1].related_id, r.id)
  t.assert(m[1].body:find("2023-12-29", 1, true) ~= nil, "names the stay")
  t.advance(3 * 86400)
  t.assert_eq(#t.find("crm.message"), 1, "once")
end)

t.test("no follow-up without a check-out or an e-mail", function()
  local g = t.create("hotel.guest", { name = "Bo", email = "bo@example.org" })
  t.create("hotel.reservation", { guest = g.id, arrival = "2024-01-01", departure = "2024-01-02",
                                  status = "cancelled" })
  local quiet = t.create("hotel.guest", { name = "Cy" })
  t.create("hotel.reservation", { guest = quiet.id, arrival = "2023-12-30", departure = "2024-01-01",
                                  status = "checked_out", checked_out_at = "2024-01-01T08:00:00Z" })
  t.advance(2 * 86400)
  t.assert_eq(#t.find("crm.message"), 0)
end)
