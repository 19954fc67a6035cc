-- Tests of ../welcome.lua: `crm rules test plugins/hotel/scripts/tests/welcome_test.lua`
-- (plugins/hotel/tests/test_a_rules.py runs every file here). The clock starts at
-- 2024-01-01T09:00:00Z.
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

t.test("checking in sends the guest a welcome message naming the room", function()
  local double = t.create("hotel.room_type", { code = "DBL", name = "Double", capacity = 2,
                                                base_rate = "100.00" })
  local r204 = t.create("hotel.room", { number = "204", room_type = double.id })
  local contact = t.create("crm.contact", { first_name = "Ada", email = "ada@example.org" })
  local ada = t.create("hotel.guest", { name = "Ada", email = "ada@example.org",
                                        contact = contact.id })
  local r = t.create("hotel.reservation", { guest = ada.id, room = r204.id, arrival = "2024-01-01",
                                            departure = "2024-01-03" })
  t.assert_eq(#t.find("crm.message"), 0, "nothing while booked")
  t.update("hotel.reservation", r.id, { status = "checked_in" })
  local m = t.find("crm.message")
  t.assert_eq(#m, 1, "one message")
  t.assert_eq(m[1].to, "ada@example.org")
  t.assert_eq(m[1].subject, "Welcome, Ada")
  t.assert(m[1].body:find("204", 1, true) ~= nil, "names the room: " .. m[1].body)
  t.assert_eq(m[1].contact, contact.id, "linked to the contact")
  t.assert_eq(m[1].related_id, r.id, "linked to the reservation")
  t.update("hotel.reservation", r.id, { nights = 2 })
  t.assert_eq(#t.find("crm.message"), 1, "other updates send nothing")
end)

t.test("a guest without an e-mail gets no message", function()
  local g = t.create("hotel.guest", { name = "Walk-in" })
  local r = t.create("hotel.reservation", { room = room(), guest = g.id, arrival = "2024-01-01",
                                            departure = "2024-01-02" })
  t.update("hotel.reservation", r.id, { status = "checked_in" })
  t.assert_eq(#t.find("crm.message"), 0)
end)
