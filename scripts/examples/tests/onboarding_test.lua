-- Tests of ../onboarding.lua.

t.define_type("crm.deal", {
  { name = "name", kind = "text", required = true },
  { name = "stage", kind = "enum", values = { "new", "negotiation", "won", "lost" }, default = "new" },
  { name = "amount", kind = "int" },
  { name = "discount", kind = "int" },
})
t.define_type("crm.task", {
  { name = "title", kind = "text", required = true },
  { name = "deal", kind = "ref", ref = "crm.deal" },
  { name = "due", kind = "date" },
  { name = "done", kind = "bool", default = false },
})

t.test("winning a deal creates one onboarding task due in a week", function()
  local deal = t.create("crm.deal", { name = "Acme", stage = "negotiation" })
  t.assert_eq(#t.find("crm.task", { deal = deal.id }), 0)
  t.update("crm.deal", deal.id, { stage = "won" })
  local tasks = t.find("crm.task", { deal = deal.id })
  t.assert_eq(#tasks, 1)
  t.assert_eq(tasks[1].title, "Onboard Acme")
  t.assert_eq(tasks[1].due, "2024-01-08")
  -- history names the rule and the user it acted for
  local h = t.history("crm.task", tasks[1].id)
  t.assert(h[1].via:find("rule .*onboarding.lua:onboarding task when a deal is won on behalf of"),
           h[1].via)
end)

t.test("other changes of a won deal create no second task", function()
  local deal = t.create("crm.deal", { name = "Beta", stage = "negotiation" })
  t.update("crm.deal", deal.id, { stage = "won" })
  t.update("crm.deal", deal.id, { amount = 1000 })
  t.assert_eq(#t.find("crm.task", { deal = deal.id }), 1)
end)

t.test("a discount above 30% is refused with its message", function()
  local deal = t.create("crm.deal", { name = "Gamma" })
  t.assert_error(function() t.update("crm.deal", deal.id, { discount = 35 }) end,
                 "a discount above 30% needs a manager")
  t.assert_eq(t.get("crm.deal", deal.id).discount, nil)
  t.update("crm.deal", deal.id, { discount = 30 })
  t.assert_eq(t.get("crm.deal", deal.id).discount, 30)
end)
