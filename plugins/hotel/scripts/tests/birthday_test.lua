-- Tests of ../birthday.lua: `crm rules test plugins/hotel/scripts/tests/birthday_test.lua`.
-- The clock starts at 2024-01-01T09:00:00Z; the greeting goes out at 09:00 on the day.
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

t.test("a guest in the house on their birthday is greeted that day, once", function()
  local ada = t.create("hotel.guest", { name = "Ada", email = "ada@example.org",
                                        birthday = "1990-01-03" })
  local r = t.create("hotel.reservation", { guest = ada.id, arrival = "2024-01-02",
                                            departure = "2024-01-06", status = "checked_in" })
  t.set_time("2024-01-02T10:00:00Z")
  t.assert_eq(#t.find("crm.message"), 0, "not the day before")
  t.set_time("2024-01-03T10:00:00Z")
  local m = t.find("crm.message")
  t.assert_eq(#m, 1, "greeted on the birthday")
  t.assert_eq(m[1].to, "ada@example.org")
  t.assert_eq(m[1].subject, "Happy birthday, Ada!")
  t.assert_eq(m[1].related_id, r.id)
  t.set_time("2024-01-04T10:00:00Z")
  t.assert_eq(#t.find("crm.message"), 1, "once")
end)

t.test("no greeting for a guest who is not staying, or left before the day", function()
  t.create("hotel.guest", { name = "Home", email = "home@example.org", birthday = "1980-01-03" })
  local gone = t.create("hotel.guest", { name = "Gone", email = "gone@example.org",
                                         birthday = "1980-01-03" })
  t.create("hotel.reservation", { guest = gone.id, arrival = "2023-12-30",
                                  departure = "2024-01-03", status = "checked_in" })
  t.set_time("2024-01-03T10:00:00Z")
  t.assert_eq(#t.find("crm.message"), 0)
end)

t.test("a guest arriving on their birthday is greeted before checking in", function()
  local g = t.create("hotel.guest", { name = "Bo", email = "bo@example.org",
                                      birthday = "1975-01-02" })
  t.create("hotel.reservation", { guest = g.id, arrival = "2024-01-02", departure = "2024-01-04" })
  t.set_time("2024-01-02T10:00:00Z")
  t.assert_eq(#t.find("crm.message", { to = "bo@example.org" }), 1)
end)
