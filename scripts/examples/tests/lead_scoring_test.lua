-- Tests of ../lead_scoring.lua. Run with: crm rules test scripts/tests/lead_scoring_test.lua

t.define_type("crm.lead", {
  { name = "name", kind = "text", required = true },
  { name = "email", kind = "email" },
  { name = "company", kind = "text" },
  { name = "source", kind = "enum", values = { "web", "referral", "event", "other" } },
  { name = "employees", kind = "int" },
  { name = "score", kind = "int", default = 0 },
})

t.test("a referral from a big company scores high", function()
  local lead = t.create("crm.lead", { name = "Ada", email = "ada@acme.example",
                                      company = "Acme", source = "referral", employees = 5000 })
  t.assert_eq(lead.score, 100)
end)

t.test("a web lead with a free mailbox scores low", function()
  local lead = t.create("crm.lead", { name = "Bob", email = "bob@gmail.com", source = "web" })
  t.assert_eq(lead.score, 10)
end)

t.test("the score follows changes", function()
  local lead = t.create("crm.lead", { name = "Cy", email = "cy@gmail.com", source = "web" })
  lead = t.update("crm.lead", lead.id, { employees = 250, company = "Cy Ltd" })
  t.assert_eq(lead.score, 45)
  -- the score is written with the change: one history entry, by the user's update
  local h = t.history("crm.lead", lead.id)
  t.assert_eq(#h, 2)
end)

t.test("a change to other fields leaves the score alone", function()
  local lead = t.create("crm.lead", { name = "Di", source = "event" })
  t.assert_eq(lead.score, 20)
  lead = t.update("crm.lead", lead.id, { name = "Diana" })
  t.assert_eq(lead.score, 20)
end)
