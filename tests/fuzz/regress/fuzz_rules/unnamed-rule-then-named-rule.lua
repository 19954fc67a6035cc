rule { on = "fz.thing.created", run = function(ev) end }
rule { name = "second", on = "fz.thing.created", run = function(ev) end }
