-- Welcome message on check-in: a crm.message to the guest's e-mail (the crm plugin's
-- outbox delivers it). Triggered by the status change itself, so a check-in through
-- POST /reservations/{id}/check-in and one through a plain PATCH both greet.

rule {
  name    = "hotel: welcome message on check-in",
  on      = "hotel.reservation.updated",
  changed = "status", to = "checked_in",
  run     = function(ev)
    local r = ev.record
    local guest = crm.get("hotel.guest", r.guest)
    if not (guest and guest.email) then return end
    local room = crm.get("hotel.room", r.room)
    crm.create("crm.message", {
      to = guest.email,
      subject = "Welcome, " .. guest.name,
      body = string.format("Dear %s,\n\nwelcome! Your room is %s, booked until %s.\n" ..
                           "The front desk is here for anything you need.",
                           guest.name, room and room.number or "ready", r.departure),
      contact = guest.contact,
      related_type = "hotel.reservation", related_id = ev.id,
    })
  end,
}
