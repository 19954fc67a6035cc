-- Tests of ../birthday.lua.

t.define_type("crm.contact", {
  { name = "name", kind = "text", required = true },
  { name = "email", kind = "email" },
  { name = "birthday", kind = "date" },
})

t.test("a greeting at 09:00 on the birthday, once", function()
  t.create("crm.contact", { name = "Ann", email = "ann@example.com", birthday = "1990-01-03" })
  t.advance(86400)                      -- 2 Jan 09:00
  t.assert_eq(#t.mail(), 0)
  t.advance(86400 - 60)                 -- 3 Jan 08:59
  t.assert_eq(#t.mail(), 0)
  t.advance(120)                        -- 3 Jan 09:01
  local mail = t.mail()
  t.assert_eq(#mail, 1)
  t.assert_eq(mail[1].to, "ann@example.com")
  t.assert_eq(mail[1].template, "birthday")
  t.assert_eq(mail[1].record.name, "Ann")
  t.advance(3600)
  t.assert_eq(#t.mail(), 1)
end)

t.test("born on 29 February: 28 February in common years", function()
  t.create("crm.contact", { name = "Leap", email = "leap@example.com", birthday = "2000-02-29" })
  t.set_time("2024-02-28T09:01:00Z")    -- 2024 is a leap year: not yet
  t.assert_eq(#t.mail(), 0)
  t.set_time("2024-02-29T09:01:00Z")
  t.assert_eq(#t.mail(), 1)
  t.set_time("2025-02-27T12:00:00Z")
  t.set_time("2025-02-28T09:01:00Z")    -- 2025 is not: on the 28th
  t.assert_eq(#t.mail(), 2)
  t.set_time("2025-03-01T09:01:00Z")
  t.assert_eq(#t.mail(), 2)
end)

t.test("no e-mail address, no greeting", function()
  t.create("crm.contact", { name = "Nomail", birthday = "1980-01-02" })
  t.advance(2 * 86400)
  t.assert_eq(#t.mail(), 0)
end)
