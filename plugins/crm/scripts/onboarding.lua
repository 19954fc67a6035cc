-- Onboarding (the crm plugin's shipped rule): when a deal moves to a winning
-- stage (100% in pipeline.stages), its owner gets an onboarding task due in a
-- week. After phase: the task is written in the deal's transaction, so both
-- happen or neither does. At most one onboarding task per deal, even if another
-- rule (the site's scripts/onboarding.lua, say) made one already.

rule {
  name    = "crm: onboarding task when a deal is won",
  on      = "crm.deal.updated",
  changed = "stage",
  when    = function(ev) return crm.crm.stage_won(ev.record.stage) end,
  run     = function(ev)
    local deal = ev.record
    if #crm.find("crm.task", { deal = deal.id, title__like = "Onboard %" }, { limit = 1 }) > 0 then
      return
    end
    crm.create("crm.task", {
      title        = "Onboard " .. deal.name,
      deal         = deal.id,
      related_type = "crm.deal",
      related_id   = deal.id,
      due          = crm.date(crm.now() + 7 * 86400),
      assignee     = deal.owner ~= 0 and deal.owner or nil,
      owner        = deal.owner,
      team         = deal.team,
    })
  end,
}
