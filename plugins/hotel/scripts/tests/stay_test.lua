-- The shipped rules against the real crm and hotel plugins, not hand-declared types:
--   crm rules test --conf plugins.conf plugins/hotel/scripts/tests/stay_test.lua
-- (plugins/hotel/tests/test_a_rules.py runs every file here this way). Each test's
-- database has the plugins' types and handlers (nights and prices are the plugin's), so a
-- stay goes booked -> checked_in -> checked_out as in production and the rules answer.
-- The clock starts at 2024-01-01T09:00:00Z.

local function hotel()
  local double = t.create("hotel.room_type", { code = "DBL", name = "Double", capacity = 2,
                                                base_rate = "100.00" })
  local room = t.create("hotel.room", { number = "204", room_type = double.id })
  local contact = t.create("crm.contact", { first_name = "Ada", email = "ada@example.org" })
  local guest = t.create("hotel.guest", { name = "Ada", email = "ada@example.org",
                                          contact = contact.id, loyalty_points = 480 })
  return room, guest, contact
end

t.test("a stay through the plugins: nights, welcome, points and tier", function()
  local room, guest, contact = hotel()
  local r = t.create("hotel.reservation", { guest = guest.id, room = room.id,
                                            arrival = "2024-01-01", departure = "2024-01-05" })
  t.assert_eq(r.nights, 4, "nights computed by the plugin")
  t.assert_eq(r.room_total, "400.00", "priced from the room type's base rate")
  t.assert_eq(#t.find("hotel.night", { reservation = r.id }), 4, "one night record a night")

  t.update("hotel.reservation", r.id, { status = "checked_in" })
  local m = t.find("crm.message")
  t.assert_eq(#m, 1, "the welcome message")
  t.assert_eq(m[1].to, "ada@example.org")
  t.assert_eq(m[1].contact, contact.id, "linked to the guest's contact")

  -- the plugin closes the folio at check-out (room 400.00, no charges): what the rule reads
  t.update("hotel.reservation", r.id, { status = "checked_out" })
  t.assert_eq(t.get("hotel.reservation", r.id).folio_total, "400.00", "the folio, closed")
  local e = t.find("hotel.loyalty_entry", { guest = guest.id })
  t.assert_eq(#e, 1, "one loyalty entry")
  t.assert_eq(e[1].points, 40 + 40, "4 nights and 400.00 spent")
  local after = t.get("hotel.guest", guest.id)
  t.assert_eq(after.loyalty_points, 560)
  t.assert_eq(after.loyalty_tier, "silver")
end)

t.test("the plugin's state machine holds under the rules", function()
  local room, guest = hotel()
  local r = t.create("hotel.reservation", { guest = guest.id, room = room.id,
                                            arrival = "2024-01-01", departure = "2024-01-02" })
  t.assert_error(function() t.update("hotel.reservation", r.id, { status = "checked_out" }) end,
                 "allowed from booked")
  t.assert_eq(#t.find("hotel.loyalty_entry"), 0, "no points for a refused check-out")
  t.assert_error(function()
    t.create("hotel.reservation", { guest = guest.id, room = room.id, arrival = "2024-01-01",
                                    departure = "2024-01-03" })
  end, "already booked on 2024-01-01")
end)
