rule {
  name = "tag_new",
  on = "fz.thing.created",
  run = function(ev)
    local r = ev.record
    if r.age and r.age > 5 then
      crm.update("fz.thing", r.id, { notes = "older than five: " .. tostring(r.age) })
    end
  end,
}
