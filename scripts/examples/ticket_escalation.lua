-- Ticket escalation: a ticket still open one hour after its due time becomes
-- urgent, is flagged as escalated, and the support lead gets a mail.

rule {
  name  = "escalate overdue tickets",
  after = "1h",
  field = "crm.ticket.due_at",
  when  = function(ev) return ev.record.status ~= "closed" and not ev.record.escalated end,
  run   = function(ev)
    crm.update("crm.ticket", ev.record.id, { priority = "urgent", escalated = true })
    crm.emit("crm.ticket_escalated", { ticket = ev.record.id })
    crm.mail.queue{
      to       = "support-lead@example.com",
      template = "ticket_escalated",
      subject  = "Overdue ticket: " .. ev.record.subject,
      record   = ev.record,
    }
  end,
}
