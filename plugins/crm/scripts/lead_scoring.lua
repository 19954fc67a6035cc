-- Lead scoring (the crm plugin's shipped rules; edit freely, or switch them off
-- from the site's scripts/ with:  disable "crm: lead scoring on create").
--
-- Every lead gets a score from 0 to 100 when it is created and whenever a fact
-- the score depends on changes. The rules run in the before phase, so the score
-- is written with the lead itself: no second write, no history entry of its own.

local source_points = {
  referral = 30, partner = 25, event = 20, web_form = 15,
  advertising = 10, cold_call = 5, import = 0, other = 0,
}

local free_mail = {
  ["gmail.com"] = true, ["yahoo.com"] = true, ["hotmail.com"] = true,
  ["outlook.com"] = true, ["mail.ru"] = true, ["yandex.ru"] = true, ["qq.com"] = true,
}

local function score(lead)
  local s = source_points[lead.source or "other"] or 0
  local domain = (lead.email or ""):match("@(.+)$")
  if domain and not free_mail[domain] then s = s + 20 end  -- a company mailbox
  if lead.company_name and lead.company_name ~= "" then s = s + 15 end
  if lead.phone then s = s + 10 end
  local title = string.lower(lead.job_title or "")
  if title:find("ceo") or title:find("director") or title:find("head") or title:find("vp") then
    s = s + 20
  elseif title:find("manager") then
    s = s + 10
  end
  if lead.message and #lead.message >= 40 then s = s + 5 end  -- they told us what they need
  if lead.consent_email then s = s + 5 end
  if s > 100 then s = 100 end
  return s
end

rule {
  name  = "crm: lead scoring on create",
  on    = "crm.lead.created",
  phase = "before",
  run   = function(ev) ev.record.score = score(ev.record) end,
}

rule {
  name    = "crm: lead scoring on update",
  on      = "crm.lead.updated",
  phase   = "before",
  changed = { "source", "email", "company_name", "phone", "job_title", "message", "consent_email" },
  run     = function(ev) ev.record.score = score(ev.record) end,
}
