rule { name = "spin", on = "fz.thing.created", run = function(ev) while true do end end }
rule { name = "pcall_spin", on = "fz.thing.updated",
       run = function(ev) while true do pcall(function() while true do end end) end end }
local t = {} for i = 1, 10 do t[i] = string.rep("x", 1000) end
