"""
`crm demo`: a few thousand records through the plugin's demo hook, the same
ones every time, with names in English, Greek, Hebrew, Persian, Chinese and
Russian; its leads scored as the shipped lead_scoring rule scores them, and
converted leads for the conversion report.
"""
import os
import re
import sqlite3

import crmtest
from crmtest import R, X, lib
from lib import eq, ok, status


def demo_db():
    """A fresh data directory with the demo loaded; returns (server, db path)."""
    s = lib.Server()
    conf = os.path.join(s.dir, "plugins.conf")
    with open(conf, "w") as f:
        f.write("[crm]\nsource = %s\n%s\ndemo.today = 2026-03-15\n"
                % (os.path.join(crmtest.ROOT, "plugins", "crm"), crmtest.STAGES))
    s.cli("demo", "--conf", conf, "--plugin-dir", crmtest.PLUGIN_DIR)
    return s, os.path.join(s.data, "crm.db")


def rows(db, sql):
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_demo_is_deterministic_and_multilingual(srv):
    a, db_a = demo_db()
    b, db_b = demo_db()
    try:
        counts = {t: rows(db_a, 'SELECT count(*) FROM "crm.%s"' % t)[0][0]
                  for t in ("company", "contact", "lead", "deal", "activity", "task", "ticket")}
        ok(sum(counts.values()) > 3000, "a few thousand records: %r" % counts)
        eq(counts["contact"], 900, "contacts")
        for sql in ('SELECT first_name, last_name, email, birthday FROM "crm.contact" ORDER BY id',
                    'SELECT name, stage, amount, close_date, lines FROM "crm.deal" ORDER BY id',
                    'SELECT subject, priority, status FROM "crm.ticket" ORDER BY id'):
            eq(rows(db_a, sql), rows(db_b, sql), "the same records: " + sql)
        names = " ".join(r[0] + " " + (r[1] or "") for r in
                         rows(db_a, 'SELECT first_name, last_name FROM "crm.contact"'))
        for script, pattern in (("Latin", "[A-Za-z]"), ("Greek", "[\u0370-\u03ff]"),
                                ("Hebrew", "[\u0590-\u05ff]"), ("Persian", "[\u0600-\u06ff]"),
                                ("Chinese", "[\u4e00-\u9fff]"), ("Cyrillic", "[\u0400-\u04ff]")):
            ok(re.search(pattern, names), script + " names")
        stages = {r[0] for r in rows(db_a, 'SELECT DISTINCT stage FROM "crm.deal"')}
        eq(stages, {"explore", "proposal", "negotiation", "won", "lost"}, "every stage")

        # the demo's scores are the rule's: the same leads created through the API (the
        # rule runs there) score the same
        fields = ("source", "email", "company_name", "phone", "job_title", "message",
                  "consent_email", "score")
        sample = rows(db_a, 'SELECT %s FROM "crm.lead" ORDER BY id LIMIT 25' % ", ".join(fields))
        ok(len({r[-1] for r in sample}) > 3, "scores vary: %r" % [r[-1] for r in sample])
        a.extra_args = ["--conf", os.path.join(a.dir, "plugins.conf"), "--plugin-dir",
                        crmtest.PLUGIN_DIR]
        a.start()
        a.admin()
        for r in sample:
            body = {k: v for k, v in zip(fields[:-1], r) if v is not None}
            body["consent_email"] = bool(body["consent_email"])
            lead = crmtest.create(a, "crm.lead", body)
            eq(lead["score"], r[-1], "the rule agrees with the demo: %r" % (body,))
        rep = status(a.get(X + "/reports/leads-converted-quarter-vs-last?today=2026-03-15"),
                     200).json
        ok(all(row["converted"] > 0 for row in rep["rows"]), "conversions in both quarters: %r"
           % rep["rows"])
        ok(status(a.get(R + "/crm.lead?status=converted&limit=1"), 200).json["data"][0]
           ["converted_contact"], "a converted lead names its contact")
    finally:
        a.close()
        b.close()


if __name__ == "__main__":
    lib.run(globals(), "plugin_crm_a_demo")
