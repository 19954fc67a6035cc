"""
Data quality and compliance, through HTTP: duplicates found by normalised e-mail and phone
and by name similarity; a merge re-points every reference, fills the kept record's empty
fields, soft-deletes the merged one with its history, and leaves every other record as it
was; a GDPR export gathers everything about a person, and an erase anonymises it while
keeping the aggregates; both are audited; bad input is refused naming the field, with
nothing written.
"""
import crmtest
from crmtest import R, X, lib
from lib import eq, error, ok, status


def shared_server():
    return crmtest.server("phone.country_code = 30\n")


def contact(srv, first, last, **more):
    body = {"first_name": first, "last_name": last}
    body.update(more)
    return crmtest.create(srv, "crm.contact", body)


def get(srv, type_, id_):
    return status(srv.get("%s/%s/%d" % (R, type_, id_)), 200, "get %s %d" % (type_, id_)).json


def snapshot(srv, types=("crm.contact", "crm.company", "crm.deal", "crm.ticket", "crm.message",
                         "crm.activity", "crm.lead", "crm.task")):
    """Every live record of the plugin's types, by (type, id)."""
    out = {}
    for t in types:
        r = status(srv.get("%s/%s?limit=1000" % (R, t)), 200).json
        for rec in r["data"]:
            out[(t, rec["id"])] = rec
    return out


events = crmtest.events


def groups_of(r):
    return [sorted(x["id"] for x in g["records"]) for g in r.json["groups"]]


def test_duplicates(srv):
    a = contact(srv, "John", "Smith", email="John.Smith@Gmail.com")
    b = contact(srv, "Jonathan", "Smyth", email="johnsmith+crm@googlemail.com")
    c = contact(srv, "Maria", "Garcia", phone="+30 210 555 1234")
    d = contact(srv, "M.", "Lopez", phone="0030 (210) 555-1234")
    e = contact(srv, "Mary", "Lopez-Jones", phone="210 5551234")  # 10 digits, no prefix: not c
    f = contact(srv, "Katherine", "Johnson")
    g = contact(srv, "Katherine", "Jonson")
    h = contact(srv, "Johnson", "Katherine")
    i = contact(srv, "Ελένη", "Παπαδοπούλου")
    j = contact(srv, "Ελενη", "Παπαδοπούλου")
    u = contact(srv, "Unique", "Person", email="unique@example.com", phone="+1 555 0100")
    r = status(srv.get(X + "/duplicates?type=crm.contact"), 200)
    groups = groups_of(r)
    ok(sorted([a["id"], b["id"]]) in groups, "gmail dots and +tag: %r" % groups)
    ok(sorted([c["id"], d["id"]]) in groups, "phone 00 prefix: %r" % groups)
    ok(sorted([f["id"], g["id"], h["id"]]) in groups, "name similarity: %r" % groups)
    ok(sorted([i["id"], j["id"]]) in groups, "names in Greek: %r" % groups)
    flat = [x for grp in groups for x in grp]
    ok(u["id"] not in flat and e["id"] not in flat, "no false positives: %r" % groups)
    reasons = {tuple(sorted(x["id"] for x in grp["records"])): grp["reasons"]
               for grp in r.json["groups"]}
    eq(reasons[tuple(sorted([a["id"], b["id"]]))], ["email"], "reason")
    # a national number with the configured country code matches the international one
    k = contact(srv, "Kostas", "K", phone="0210 777 8888")
    m = contact(srv, "Konstantinos", "Kappa", phone="+30 210 777 8888")
    ok(sorted([k["id"], m["id"]]) in groups_of(status(srv.get(X + "/duplicates?type=crm.contact"),
                                                      200)), "phone.country_code")
    # a stricter threshold drops the name pairs
    groups = groups_of(status(srv.get(X + "/duplicates?type=crm.contact&threshold=1"), 200))
    ok(sorted([f["id"], g["id"]]) not in groups, "threshold 1")
    status(srv.get(X + "/duplicates?type=crm.company"), 200)
    error(srv.get(X + "/duplicates"), 400, field="type")
    error(srv.get(X + "/duplicates?type=core.user"), 400, field="type")
    for t in ("2", "0.1", "x", ""):
        error(srv.get(X + "/duplicates?type=crm.contact&threshold=" + t), 400, field="threshold")


def test_merge_repoints_and_loses_nothing(srv):
    co = crmtest.create(srv, "crm.company", {"name": "Merge Co"})
    keep = contact(srv, "Anna", "Keep", email="anna@example.com")
    dup = contact(srv, "Ana", "Keep", email="ana.other@example.com", phone="+30 210 000 0001",
                  company=co["id"], city="Athens", notes="prefers mornings")
    other = contact(srv, "Other", "Person", email="other@example.com")
    deal = crmtest.create(srv, "crm.deal", {"name": "D", "contact": dup["id"], "amount": "10.00"})
    ticket = crmtest.create(srv, "crm.ticket", {"subject": "T", "contact": dup["id"]})
    msg = crmtest.create(srv, "crm.message", {"to": "ana.other@example.com", "subject": "s",
                                              "contact": dup["id"], "status": "failed"})
    act = crmtest.create(srv, "crm.activity", {"kind": "call", "subject": "Called",
                                               "related_type": "crm.contact",
                                               "related_id": dup["id"]})
    lead = crmtest.create(srv, "crm.lead", {"last_name": "Keep", "converted_contact": dup["id"]})
    other_deal = crmtest.create(srv, "crm.deal", {"name": "O", "contact": other["id"]})
    before = snapshot(srv)

    _, token = crmtest.user_with_role(srv, "mgr", "sales manager")
    error(srv.post(X + "/merge", {"type": "crm.contact", "keep": keep["id"], "merge": [dup["id"]]},
                   token=token), 403, what="a manager may not delete contacts outside the team")
    for body, field in (({"keep": keep["id"], "merge": [dup["id"]]}, "type"),
                        ({"type": "crm.deal", "keep": 1, "merge": [2]}, "type"),
                        ({"type": "crm.contact", "merge": [dup["id"]]}, "keep"),
                        ({"type": "crm.contact", "keep": "1", "merge": [dup["id"]]}, "keep"),
                        ({"type": "crm.contact", "keep": keep["id"]}, "merge"),
                        ({"type": "crm.contact", "keep": keep["id"], "merge": []}, "merge"),
                        ({"type": "crm.contact", "keep": keep["id"], "merge": [keep["id"]]}, "merge"),
                        ({"type": "crm.contact", "keep": keep["id"], "merge": [dup["id"], dup["id"]]},
                         "merge"),
                        ({"type": "crm.contact", "keep": keep["id"], "merge": ["x"]}, "merge"),
                        ({"type": "crm.contact", "keep": keep["id"], "merge": list(range(1, 60))},
                         "merge")):
        error(srv.post(X + "/merge", body), 400, field=field, what=repr(body))
    error(srv.post(X + "/merge", {"type": "crm.contact", "keep": keep["id"],
                                  "merge": [dup["id"], 999999]}), 404, field="merge")
    error(srv.post(X + "/merge", {"type": "crm.contact", "keep": 999999, "merge": [dup["id"]]}),
          404, field="keep")
    error(srv.post(X + "/merge", raw="[]", headers={"Content-Type": "application/json"}), 400)
    eq(snapshot(srv), before, "nothing written by refused merges")

    r = status(srv.post(X + "/merge", {"type": "crm.contact", "keep": keep["id"],
                                       "merge": [dup["id"]]}), 200, "merge")
    kept = r.json["record"]
    eq(kept["phone"], dup["phone"], "empty field filled")
    eq(kept["company"], co["id"], "company filled")
    eq(kept["notes"], "prefers mornings", "notes filled")
    eq(kept["email"], "anna@example.com", "the kept value wins")
    eq(r.json["conflicts"]["email"]["merged"], "ana.other@example.com", "conflict reported")
    eq(r.json["references_repointed"], 5, "deal, ticket, message, lead, activity")
    error(srv.get("%s/crm.contact/%d" % (R, dup["id"])), 404, what="merged: soft-deleted")
    deleted = status(srv.get("%s/crm.contact?deleted=1&id=%d" % (R, dup["id"])), 200).json["data"]
    eq([x["phone"] for x in deleted], [dup["phone"]], "the merged record is kept, deleted")
    hist = status(srv.get("%s/crm.contact/%d/history" % (R, dup["id"])), 200).json
    ok(hist, "its history is kept")
    eq(get(srv, "crm.deal", deal["id"])["contact"], keep["id"], "deal")
    eq(get(srv, "crm.ticket", ticket["id"])["contact"], keep["id"], "ticket")
    eq(get(srv, "crm.message", msg["id"])["contact"], keep["id"], "message")
    eq(get(srv, "crm.activity", act["id"])["related_id"], keep["id"], "activity")
    eq(get(srv, "crm.lead", lead["id"])["converted_contact"], keep["id"], "lead")
    # every other record is exactly as it was
    after = snapshot(srv)
    changed = {("crm.contact", keep["id"]), ("crm.contact", dup["id"]), ("crm.deal", deal["id"]),
               ("crm.ticket", ticket["id"]), ("crm.message", msg["id"]),
               ("crm.activity", act["id"]), ("crm.lead", lead["id"])}
    for key, rec in before.items():
        if key not in changed:
            eq(after.get(key), rec, "untouched %s" % (key,))
    eq(after[("crm.deal", other_deal["id"])]["contact"], other["id"], "other deal")
    notes = [a for a in after.values() if a.get("subject") == "Records merged"]
    eq([(n["related_type"], n["related_id"]) for n in notes], [("crm.contact", keep["id"])],
       "audit note on the kept record")
    ev = events(srv, "crm.records_merged")
    eq(len(ev), 1, "audit event")
    ok("anna" not in str(ev).lower(), "ids in the audit event, no personal data")
    # merging a deleted record again: 404
    error(srv.post(X + "/merge", {"type": "crm.contact", "keep": keep["id"],
                                  "merge": [dup["id"]]}), 404, field="merge")


def test_merge_repoints_references_the_caller_cannot_see(srv):
    """A sales manager merges two of the team's contacts. References are found from the
    schema, so a custom ref field added at run time counts; and they are re-pointed as the
    system, so records the manager may not read (an admin's task and deal) move too."""
    status(srv.post("/api/v1/types/crm.task/fields",
                    {"name": "reviewer", "kind": "ref", "ref": "crm.contact"}), 201, "custom field")
    team = crmtest.create(srv, "core.team", {"name": "merge team"})["id"]
    mgr_id, tok = crmtest.user_with_role(srv, "mgr2", "sales manager", team)
    keep = crmtest.create(srv, "crm.contact", {"first_name": "Yosef", "last_name": "Cohen",
                                               "email": "yosef@example.co.il"}, token=tok)
    dup = crmtest.create(srv, "crm.contact", {"first_name": "Yossi", "last_name": "Cohen",
                                              "phone": "+972 3 555 1234"}, token=tok)
    outside = contact(srv, "Not", "Theirs")  # the admin's: not the team's
    task = crmtest.create(srv, "crm.task", {"title": "Review the contract", "reviewer": dup["id"]})
    deal = crmtest.create(srv, "crm.deal", {"name": "Admin's deal", "contact": dup["id"]})
    error(srv.get("%s/crm.task/%d" % (R, task["id"]), token=tok), 404, what="task hidden")
    error(srv.get("%s/crm.deal/%d" % (R, deal["id"]), token=tok), 404, what="deal hidden")

    before = snapshot(srv)
    error(srv.post(X + "/merge", {"type": "crm.contact", "keep": keep["id"],
                                  "merge": [dup["id"], outside["id"]]}, token=tok), 403,
          what="deleting a contact outside the team")
    eq(snapshot(srv), before, "a refused merge writes nothing")

    r = status(srv.post(X + "/merge", {"type": "crm.contact", "keep": keep["id"],
                                       "merge": [dup["id"]]}, token=tok), 200, "merge")
    eq(r.json["references_repointed"], 2, "the task's custom field and the deal")
    eq(r.json["record"]["phone"], dup["phone"], "filled")
    ok("Review the contract" not in r.body and "Admin's deal" not in r.body,
       "nothing of the hidden records in the answer")
    eq(get(srv, "crm.task", task["id"])["reviewer"], keep["id"], "custom ref re-pointed")
    eq(get(srv, "crm.deal", deal["id"])["contact"], keep["id"], "hidden deal re-pointed")
    ev = [e for e in events(srv, "crm.records_merged")
          if (e.get("payload") or {}).get("keep") == keep["id"]]
    eq(len(ev), 1, "the fact is in the event stream")
    eq(ev[0]["payload"]["by"], mgr_id, "who merged")


def test_gdpr_export_and_erase(srv):
    co = crmtest.create(srv, "crm.company", {"name": "Privacy Ltd"})
    p = contact(srv, "Dana", "Private", email="dana@example.com", phone="+972 3 555 0000",
                birthday="1990-02-03", company=co["id"], consent_email=True, city="Tel Aviv")
    other = contact(srv, "Keep", "Me", email="keep@example.com", phone="+1 555 0199")
    deal = crmtest.create(srv, "crm.deal", {"name": "Deal 1", "contact": p["id"],
                                            "amount": "5000.00", "stage": "won"})
    ticket = crmtest.create(srv, "crm.ticket", {"subject": "Dana can't log in",
                                                "description": "her password is dana1990",
                                                "contact": p["id"], "status": "resolved",
                                                "satisfaction": 5})
    tnote = crmtest.create(srv, "crm.activity", {"kind": "note", "subject": "Called Dana",
                                                 "related_type": "crm.ticket",
                                                 "related_id": ticket["id"]})
    msg = crmtest.create(srv, "crm.message", {"to": "dana@example.com", "subject": "Hi Dana",
                                              "body": "Dear Dana", "contact": p["id"],
                                              "status": "failed"})
    call = crmtest.create(srv, "crm.activity", {"kind": "call", "subject": "Call with Dana",
                                                "body": "lives at 1 Main St",
                                                "related_type": "crm.contact",
                                                "related_id": p["id"]})
    other_deal = crmtest.create(srv, "crm.deal", {"name": "Other", "contact": other["id"],
                                                  "amount": "7.00"})

    _, token = crmtest.user_with_role(srv, "agent", "support agent")
    error(srv.get("%s/gdpr/%d/export" % (X, p["id"]), token=token), 403)
    error(srv.post("%s/gdpr/%d/erase" % (X, p["id"]), token=token), 403)
    error(srv.get(X + "/gdpr/abc/export"), 400, field="contact_id")
    error(srv.post(X + "/gdpr/-1/erase"), 400, field="contact_id")
    error(srv.get(X + "/gdpr/999999/export"), 404)
    error(srv.post(X + "/gdpr/999999/erase"), 404)

    r = status(srv.get("%s/gdpr/%d/export" % (X, p["id"])), 200, "export")
    ex = r.json
    eq(ex["contact"]["email"], "dana@example.com", "contact")
    eq(ex["company"]["name"], "Privacy Ltd", "company")
    rel = ex["related"]
    eq([d["id"] for d in rel["crm.deal"]], [deal["id"]], "deals")
    eq([t["id"] for t in rel["crm.ticket"]], [ticket["id"]], "tickets")
    eq([m["id"] for m in rel["crm.message"]], [msg["id"]], "messages")
    eq(sorted(a["id"] for a in rel["crm.activity"]), sorted([call["id"], tnote["id"]]),
       "activities, also those on the person's tickets")
    ok("/api/v1/records/crm.contact/%d/history" % p["id"] in ex["history"], "history address")
    eq([h["action"] for h in ex["contact_history"]], ["create"], "the contact's own history")
    eq(ex["contact_history"][0]["changes"]["email"], [None, "dana@example.com"], "with values")
    ok(other_deal["id"] not in [d["id"] for d in rel["crm.deal"]], "nobody else's")
    status(srv.get(ex["history"][0]), 200, "the history address answers")
    eq(len(events(srv, "crm.gdpr_exported")), 1, "export audited")

    before = snapshot(srv)
    r = status(srv.post("%s/gdpr/%d/erase" % (X, p["id"])), 200, "erase")
    c = get(srv, "crm.contact", p["id"])
    eq((c["first_name"], c["last_name"]), ("Erased", "#%d" % p["id"]), "name")
    for f in ("email", "phone", "birthday", "city"):
        eq(c[f], None, f)
    eq((c["consent_email"], c["preferred_channel"]), (False, "none"), "no more mail")
    eq(c["company"], co["id"], "the company link (not personal) is kept")
    d = get(srv, "crm.deal", deal["id"])
    eq((d["amount"], d["stage"], d["contact"]), ("5000.00", "won", p["id"]), "aggregates kept")
    t = get(srv, "crm.ticket", ticket["id"])
    eq((t["subject"], t["description"], t["satisfaction"], t["status"]),
       ("[erased]", None, 5, "resolved"), "ticket anonymised, score kept")
    m = get(srv, "crm.message", msg["id"])
    eq((m["to"], m["subject"], m["body"], m["status"]),
       ("erased@erased.invalid", "[erased]", None, "failed"), "message")
    a = get(srv, "crm.activity", call["id"])
    eq((a["subject"], a["body"], a["kind"]), ("[erased]", None, "call"), "activity")
    eq(get(srv, "crm.activity", tnote["id"])["subject"], "[erased]", "the ticket's note")
    # nothing else changed
    after = snapshot(srv)
    touched = {("crm.contact", p["id"]), ("crm.ticket", ticket["id"]), ("crm.message", msg["id"]),
               ("crm.activity", call["id"]), ("crm.activity", tnote["id"])}
    for key, rec in before.items():
        if key not in touched:
            eq(after.get(key), rec, "untouched %s" % (key,))
    eq(get(srv, "crm.contact", other["id"])["email"], "keep@example.com", "other contact")
    # audited: an event and a note on the contact (no personal data in either)
    ev = events(srv, "crm.gdpr_erased")
    eq(len(ev), 1, "erase event")
    ok("dana" not in str(ev).lower(), "no personal data in the audit event")
    notes = [x for x in after.values() if x.get("subject") == "GDPR erase"]
    eq([(n["related_type"], n["related_id"]) for n in notes], [("crm.contact", p["id"])], "note")
    # the export after the erase holds no personal data
    ex = status(srv.get("%s/gdpr/%d/export" % (X, p["id"])), 200).json
    text = str({k: ex[k] for k in ("contact", "related")}).lower()
    for secret in ("dana", "dana@example.com", "1990-02-03", "555 0000", "main st"):
        ok(secret not in text, "%r erased" % secret)
    # nor do the contact's history and its events, in the API and in the database file
    hist = status(srv.get("/api/v1/records/crm.contact/%d/history" % p["id"]), 200).json
    import sqlite3
    db = sqlite3.connect("file:%s/crm.db?mode=ro" % srv.data, uri=True)
    rows = db.execute("SELECT changes FROM core_history WHERE type = 'crm.contact' AND "
                      "record_id = ?", (p["id"],)).fetchall()
    rows += db.execute("SELECT payload FROM core_outbox WHERE type = 'crm.contact' AND "
                       "record_id = ?", (p["id"],)).fetchall()
    db.close()
    ok(len(rows) >= 4, "history and events are there: %d rows" % len(rows))
    stored = (str(hist) + str(rows)).lower()
    for secret in ("dana@example.com", "1990-02-03", "555 0000", "tel aviv"):
        ok(secret not in stored, "%r gone from history and events: %s" % (
            secret, [r for r in rows if secret in str(r).lower()][:2]))
    ok("[erased]" in stored, "erasures are visible as such")


if __name__ == "__main__":
    lib.run(globals(), "plugin_crm_b_quality")
