-- Birthday greeting: at 09:00 UTC on each contact's birthday (28 February in
-- common years for those born on 29 February), queue the "birthday" mail.

rule {
  name   = "birthday greeting",
  yearly = "crm.contact.birthday",
  at     = "09:00",
  when   = function(ev) return ev.record.email ~= nil end,
  run    = function(ev)
    crm.mail.queue{ to = ev.record.email, template = "birthday", record = ev.record }
  end,
}
