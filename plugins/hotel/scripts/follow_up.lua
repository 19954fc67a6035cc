-- Satisfaction follow-up: a day after check-out, a message asking how the stay was.
-- A date-offset schedule on checked_out_at (a datetime: it fires 24 hours after the
-- check-out); stays that never checked out have no checked_out_at and get nothing.

rule {
  name  = "hotel: satisfaction follow-up after departure",
  after = "1d", field = "hotel.reservation.checked_out_at",
  when  = function(ev) return ev.record.status == "checked_out" end,
  run   = function(ev)
    local guest = crm.get("hotel.guest", ev.record.guest)
    if not (guest and guest.email) then return end
    crm.create("crm.message", {
      to = guest.email,
      subject = "How was your stay?",
      body = string.format("Dear %s,\n\nthank you for staying with us from %s to %s. " ..
                           "How was it? Reply to this message: we read every answer.",
                           guest.name, ev.record.arrival, ev.record.departure),
      contact = guest.contact,
      related_type = "hotel.reservation", related_id = ev.id,
    })
  end,
}
