-- Tests of ../follow_up.lua: `crm rules test plugins/hotel/scripts/tests/follow_up_test.lua`.
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

t.test("a day after check-out the guest is asked how the stay was", function()
  local g = t.create("hotel.guest", { name = "Ada", email = "ada@example.org" })
  local r = t.create("hotel.reservation", { room = room(), guest = g.id, arrival = "2023-12-29",
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
  t.create("hotel.reservation", { room = room(), guest = g.id, arrival = "2024-01-01", departure = "2024-01-02",
                                  status = "cancelled" })
  local quiet = t.create("hotel.guest", { name = "Cy" })
  t.create("hotel.reservation", { room = room(), guest = quiet.id, arrival = "2023-12-30", departure = "2024-01-01",
                                  status = "checked_out", checked_out_at = "2024-01-01T08:00:00Z" })
  t.advance(2 * 86400)
  t.assert_eq(#t.find("crm.message"), 0)
end)
