rule {
  namdelete = "no_lost",
  on = "fz.thing.updated",
  phase = "before",
  changed = { "stage" },
  to = "lost",
  run = function(ev) error("cannot lose") end,
}
rule { name = "sched", cron = "0 3( * * *", run = function() end }
rule { name = "bday", yearly = "fz.thin.gbirthday", at = "09:00", run = function(ev) end }
