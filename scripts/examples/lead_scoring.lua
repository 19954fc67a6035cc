-- Lead scoring: every lead gets a score from 0 to 100 when it is created and
-- whenever the facts the score depends on change. Runs in the before phase,
-- so the score is written with the lead itself (no second write, no history
-- entry of its own).

local source_points = { referral = 30, event = 20, web = 10, other = 0 }

local function score(lead)
  local s = source_points[lead.source or "other"] or 0
  local employees = lead.employees or 0
  if employees >= 1000 then s = s + 40
  elseif employees >= 100 then s = s + 25
  elseif employees >= 10 then s = s + 10 end
  -- a company address scores higher than a free mailbox
  local email = lead.email or ""
  local domain = email:match("@(.+)$")
  if domain and not (domain == "gmail.com" or domain == "yahoo.com" or domain == "hotmail.com") then
    s = s + 20
  end
  if lead.company and lead.company ~= "" then s = s + 10 end
  if s > 100 then s = 100 end
  return s
end

rule {
  name  = "lead scoring on create",
  on    = "crm.lead.created",
  phase = "before",
  run   = function(ev) ev.record.score = score(ev.record) end,
}

rule {
  name    = "lead scoring on update",
  on      = "crm.lead.updated",
  phase   = "before",
  changed = { "source", "employees", "email", "company" },
  run     = function(ev) ev.record.score = score(ev.record) end,
}
