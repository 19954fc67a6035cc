-- Birthday greeting when a guest's birthday falls during the stay.
--
-- The design: a yearly schedule on hotel.guest.birthday at 09:00 UTC (29 February
-- fires on 28 February in common years). On the day, the guest gets the greeting if
-- they are in the house — a checked-in reservation with arrival <= today < departure —
-- or arrive today (booked, arrival = today: the greeting is not lost to a late
-- check-in). The message goes out on the birthday itself, not days ahead at check-in,
-- and a guest who leaves early gets none. The scheduler keeps its state in the
-- database: a restart neither repeats nor loses the firing (missed days run late, up
-- to 7 days back).

local function staying_today(guest_id, today)
  local inside = crm.find("hotel.reservation", { guest = guest_id, status = "checked_in",
                                                 arrival__lte = today, departure__gt = today },
                          { limit = 1 })
  if #inside > 0 then return inside[1] end
  local arriving = crm.find("hotel.reservation", { guest = guest_id, status = "booked",
                                                   arrival = today }, { limit = 1 })
  return arriving[1]
end

rule {
  name   = "hotel: birthday greeting during a stay",
  yearly = "hotel.guest.birthday",
  at     = "09:00",
  when   = function(ev) return ev.record.email ~= nil end,
  run    = function(ev)
    local today = crm.date(ev.due or crm.now())
    local stay = staying_today(ev.record.id, today)
    if not stay then return end
    crm.create("crm.message", {
      to = ev.record.email,
      subject = "Happy birthday, " .. ev.record.name .. "!",
      body = string.format("Dear %s,\n\nthe whole team wishes you a happy birthday. " ..
                           "We are glad you are celebrating it with us.", ev.record.name),
      contact = ev.record.contact,
      related_type = "hotel.reservation", related_id = stay.id,
    })
  end,
}
