-- Tests of ../welcome.lua: `crm rules test plugins/hotel/scripts/tests/welcome_test.lua`
-- (plugins/hotel/tests/test_a_rules.py runs every file here). The clock starts at
-- 2024-01-01T09:00:00Z.
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

t.test("checking in sends the guest a welcome message naming the room", function()
  local room = t.create("hotel.room", { number = "204" })
  local ada = t.create("hotel.guest", { name = "Ada", email = "ada@example.org", contact = 7 })
  local r = t.create("hotel.reservation", { guest = ada.id, room = room.id, arrival = "2024-01-01",
                                            departure = "2024-01-03", nights = 2 })
  t.assert_eq(#t.find("crm.message"), 0, "nothing while booked")
  t.update("hotel.reservation", r.id, { status = "checked_in" })
  local m = t.find("crm.message")
  t.assert_eq(#m, 1, "one message")
  t.assert_eq(m[1].to, "ada@example.org")
  t.assert_eq(m[1].subject, "Welcome, Ada")
  t.assert(m[1].body:find("204", 1, true) ~= nil, "names the room: " .. m[1].body)
  t.assert_eq(m[1].contact, 7, "linked to the contact")
  t.assert_eq(m[1].related_id, r.id, "linked to the reservation")
  t.update("hotel.reservation", r.id, { nights = 2 })
  t.assert_eq(#t.find("crm.message"), 1, "other updates send nothing")
end)

t.test("a guest without an e-mail gets no message", function()
  local g = t.create("hotel.guest", { name = "Walk-in" })
  local r = t.create("hotel.reservation", { guest = g.id, arrival = "2024-01-01",
                                            departure = "2024-01-02" })
  t.update("hotel.reservation", r.id, { status = "checked_in" })
  t.assert_eq(#t.find("crm.message"), 0)
end)
