-- When a deal is won, create an onboarding task for its owner, due in a week.
-- Runs in the after phase: the task is written in the same transaction as the
-- deal's change, so both happen or neither does.

rule {
  name    = "onboarding task when a deal is won",
  on      = "crm.deal.updated",
  changed = "stage",
  to      = "won",
  run     = function(ev)
    crm.create("crm.task", {
      title = "Onboard " .. ev.record.name,
      deal  = ev.record.id,
      due   = crm.date(crm.now() + 7 * 86400),
      owner = ev.record.owner,
    })
  end,
}

-- Nobody gives more than 30% without a manager: refuse the change itself.
rule {
  name  = "no discount above 30%",
  on    = "crm.deal.updated",
  phase = "before",
  changed = "discount",
  run   = function(ev)
    if (ev.record.discount or 0) > 30 then
      crm.reject("discount", "a discount above 30% needs a manager")
    end
  end,
}
