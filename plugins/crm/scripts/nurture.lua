-- Nurturing (the crm plugin's shipped rule): every morning, leads that agreed
-- to e-mail and have not been touched for a week get the next mail of the
-- nurture sequence (templates "nurture_1" to "nurture_3", crm.email_template
-- records), until they reply, convert or run out of steps. Stale leads are
-- recycled by the plugin's "recycle" schedule (leads.recycle_days).

local STEPS = 3
local WEEK = 7 * 86400

rule {
  name = "crm: nurture leads",
  cron = "0 8 * * *",
  run  = function(ev)
    local stale = crm.datetime(ev.now - WEEK)
    local leads = crm.find("crm.lead", {
      status__in = { "new", "nurturing", "recycled" },
      consent_email = true,
      nurture_step__lt = STEPS,
      updated_at__lt = stale,
    }, { limit = 200, sort = "updated_at" })
    for _, lead in ipairs(leads) do
      if lead.email then
        local step = (lead.nurture_step or 0) + 1
        crm.mail.queue{ to = lead.email, template = "nurture_" .. step, record = lead }
        crm.update("crm.lead", lead.id, {
          status = "nurturing", nurture_step = step, last_touch_at = crm.datetime(ev.now),
        })
      end
    end
  end,
}
