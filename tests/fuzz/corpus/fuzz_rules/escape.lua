-- sandbox probes at load time
local ok = pcall(function() return os.execute("true") end)
local ok2 = pcall(function() return io.open("/etc/passwd") end)
pcall(setmetatable, string, {})
pcall(function() string.upper = nil end)
rule { name = "env", on = "fz.thing.created", run = function(ev)
  local keys = {} for k in pairs(_ENV) do keys[#keys + 1] = k end
  return #keys end }
