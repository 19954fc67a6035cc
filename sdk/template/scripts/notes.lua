-- The template plugin's rules: loaded when the plugin is enabled.

rule {
  name  = "a note marked done gets its due date cleared",
  on    = "template.note.updated",
  phase = "before",
  when  = function(ev) return ev.changed.status and ev.record.status == "done" end,
  run   = function(ev) ev.record.due = nil end,
}
