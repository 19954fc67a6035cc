-- ticket_routing.lua — the service desk's policy, shipped by the crm plugin: edit it to
-- route differently (by keyword, by customer, by language). C does what must not be
-- edited away (satisfaction on close, escalation: service.c); these rules decide who gets
-- a new ticket and when its SLA runs out.
--
-- Settings (plugins.conf, section [crm]) the functions below read:
--   sla.hours.<priority> = 8                     defaults: urgent 4, high 8, normal 24, low 72
--   ticket.route.priority.<priority> = <user>    e.g. ticket.route.priority.urgent = alice
--   ticket.route.<category> = <user>             e.g. ticket.route.billing = bob
--   ticket.route.default = <user>
-- (<user>: a username or a user id.)

local function due_after(seconds_from, priority)
  return crm.datetime(seconds_from + crm.crm.sla_hours(priority) * 3600)
end

rule {
  name  = "crm: ticket SLA due from its priority",
  on    = "crm.ticket.created",
  phase = "before",
  order = 10,
  when  = function(ev) return ev.record.sla_due == nil end,
  run   = function(ev)
    ev.record.sla_due = due_after(crm.now(), ev.record.priority or "normal")
  end,
}

rule {
  name  = "crm: route a new ticket by priority, then category",
  on    = "crm.ticket.created",
  phase = "before",
  order = 20,
  when  = function(ev) return ev.record.assignee == nil end,
  run   = function(ev)
    -- crm.crm.ticket_assignee tries ticket.route.priority.<p>, ticket.route.<category>,
    -- then ticket.route.default; nil leaves the ticket unassigned (the queue).
    ev.record.assignee = crm.crm.ticket_assignee(ev.record.priority or "normal",
                                                 ev.record.category)
  end,
}

rule {
  name    = "crm: a ticket's SLA due follows a change of priority",
  on      = "crm.ticket.updated",
  phase   = "before",
  changed = "priority",
  when    = function(ev) return not ev.record.escalated end,
  run     = function(ev)
    local created = crm.time(ev.record.created_at or ev.old.created_at) or crm.now()
    ev.record.sla_due = due_after(created, ev.record.priority or "normal")
  end,
}

rule {
  name    = "crm: stamp when a ticket is resolved or closed",
  on      = "crm.ticket.updated",
  phase   = "before",
  changed = "status",
  run     = function(ev)
    local s = ev.record.status
    if s == "resolved" and not ev.record.resolved_at then
      ev.record.resolved_at = crm.datetime(crm.now())
    elseif s == "closed" then
      ev.record.closed_at = ev.record.closed_at or crm.datetime(crm.now())
      ev.record.resolved_at = ev.record.resolved_at or ev.record.closed_at
    end
  end,
}
