-- Tests of ../ticket_escalation.lua. The clock starts at 2024-01-01T09:00:00Z.

t.define_type("crm.ticket", {
  { name = "subject", kind = "text", required = true },
  { name = "status", kind = "enum", values = { "open", "pending", "closed" }, default = "open" },
  { name = "priority", kind = "enum", values = { "low", "normal", "high", "urgent" }, default = "normal" },
  { name = "escalated", kind = "bool", default = false },
  { name = "due_at", kind = "datetime" },
})

t.test("an open ticket is escalated an hour after it was due", function()
  local tk = t.create("crm.ticket", { subject = "Printer on fire", due_at = "2024-01-01T12:00:00Z" })
  t.advance(3 * 3600)            -- 12:00: due, not yet overdue
  t.assert_eq(t.get("crm.ticket", tk.id).priority, "normal")
  t.advance(3600 + 60)           -- 13:01
  local now = t.get("crm.ticket", tk.id)
  t.assert_eq(now.priority, "urgent")
  t.assert_eq(now.escalated, true)
  t.assert_eq(#t.events("crm.ticket_escalated"), 1)
  local mail = t.mail()
  t.assert_eq(#mail, 1)
  t.assert_eq(mail[1].to, "support-lead@example.com")
  t.assert_eq(mail[1].subject, "Overdue ticket: Printer on fire")
end)

t.test("a closed ticket is not escalated", function()
  local tk = t.create("crm.ticket", { subject = "Done", due_at = "2024-01-01T10:00:00Z" })
  t.update("crm.ticket", tk.id, { status = "closed" })
  t.advance(6 * 3600)
  t.assert_eq(t.get("crm.ticket", tk.id).priority, "normal")
  t.assert_eq(#t.mail(), 0)
end)

t.test("escalation happens once", function()
  local tk = t.create("crm.ticket", { subject = "Again", due_at = "2024-01-01T10:00:00Z" })
  t.advance(2 * 3600)
  t.advance(24 * 3600)
  t.assert_eq(#t.mail(), 1)
end)
