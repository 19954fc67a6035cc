-- Tests of ../birthday.lua: `crm rules test plugins/hotel/scripts/tests/birthday_test.lua`.
-- The clock starts at 2024-01-01T09:00:00Z; the greeting goes out at 09:00 on the day.
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

t.test("a guest in the house on their birthday is greeted that day, once", function()
  local ada = t.create("hotel.guest", { name = "Ada", email = "ada@example.org",
                                        birthday = "1990-01-03" })
  local r = t.create("hotel.reservation", { room = room(), guest = ada.id, arrival = "2024-01-02",
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
  t.create("hotel.reservation", { room = room(), guest = gone.id, arrival = "2023-12-30",
                                  departure = "2024-01-03", status = "checked_in" })
  t.set_time("2024-01-03T10:00:00Z")
  t.assert_eq(#t.find("crm.message"), 0)
end)

t.test("a guest arriving on their birthday is greeted before checking in", function()
  local g = t.create("hotel.guest", { name = "Bo", email = "bo@example.org",
                                      birthday = "1975-01-02" })
  t.create("hotel.reservation", { room = room(), guest = g.id, arrival = "2024-01-02", departure = "2024-01-04" })
  t.set_time("2024-01-02T10:00:00Z")
  t.assert_eq(#t.find("crm.message", { to = "bo@example.org" }), 1)
end)
