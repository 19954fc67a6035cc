-- Tests of ../nurture.lua: `crm rules test plugins/crm/scripts/tests/nurture_test.lua`
-- (plugins/crm/tests/test_a_rules.py runs it). The clock starts at 2024-01-01T09:00:00Z.

t.define_type("crm.lead", {
  { name = "first_name", kind = "text" },
  { name = "email", kind = "email" },
  { name = "status", kind = "enum", default = "new",
    values = { "new", "working", "nurturing", "qualified", "converted", "recycled", "disqualified" } },
  { name = "consent_email", kind = "bool", default = false },
  { name = "nurture_step", kind = "int", default = 0 },
  { name = "last_touch_at", kind = "datetime" },
  -- what lead_scoring.lua (loaded too) reads and writes
  { name = "score", kind = "int", default = 0 },
  { name = "source", kind = "text" },
  { name = "company_name", kind = "text" },
  { name = "phone", kind = "phone" },
  { name = "job_title", kind = "text" },
  { name = "message", kind = "text" },
})

t.test("a consenting lead gets one nurture mail a week, three at most", function()
  local lead = t.create("crm.lead", { first_name = "Maya", email = "maya@example.org",
                                      consent_email = true })
  local silent = t.create("crm.lead", { first_name = "Noam", email = "noam@example.org" })
  t.advance(86400)                       -- a day: too fresh
  t.assert_eq(#t.mail(), 0, "no mail on day 1")
  for _ = 1, 7 do t.advance(86400) end   -- a week later, at 08:00 the rule runs
  t.assert_eq(#t.mail(), 1, "first mail")
  t.assert_eq(t.mail()[1].template, "nurture_1")
  t.assert_eq(t.mail()[1].to, "maya@example.org")
  local l = t.get("crm.lead", lead.id)
  t.assert_eq(l.status, "nurturing")
  t.assert_eq(l.nurture_step, 1)
  for _ = 1, 28 do t.advance(86400) end  -- four more weeks: steps 2 and 3, then none
  t.assert_eq(#t.mail(), 3, "three mails in all")
  t.assert_eq(t.get("crm.lead", lead.id).nurture_step, 3)
  t.assert_eq(t.get("crm.lead", silent.id).nurture_step, 0, "no consent, no mail")
end)
