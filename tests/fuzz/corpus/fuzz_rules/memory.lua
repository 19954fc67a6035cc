rule { name = "hog", on = "fz.thing.deleted", run = function(ev)
  local s = "x" while true do s = s .. s end end }
rule { name = "deep", on = "fz.thing.created", run = function(ev)
  local function f() return 1 + f() end return f() end }
