rule { name = 5, on = {}, run = "x", order = "a", enabled = 3 }
rule { name = "dup", on = "x", run = function() end }
rule { name = "dup", on = "x", run = function() end }
