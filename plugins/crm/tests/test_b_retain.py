"""
Retain and expand, through HTTP: a campaign to a segment queues one crm.message per
consenting recipient and the outbox delivers each over SMTP to a sink on loopback (a tiny
SMTP server in this file); templates render placeholders safely (hostile values and
placeholders, HTML escaping, bounds); a failed delivery is recorded on the message and
retried later (next_attempt_at, on the platform's clock) until mail.max_attempts;
upsell suggestions come from similar customers' purchases; bad input is refused with the
field named and nothing written.
"""
import email
import email.policy
import socket
import time

import crmtest
from crmtest import R, X, lib
from lib import eq, error, ok, status


SINK = crmtest.SmtpSink()


def shared_server():
    return crmtest.server("mail.smtp_url = smtp://127.0.0.1:%d\nmail.from = CRM Test <crm@example.com>\n"
                          % SINK.port)


def contact(srv, first, last, email_addr, consent=True, **more):
    body = {"first_name": first, "last_name": last, "email": email_addr, "consent_email": consent}
    body.update(more)
    return crmtest.create(srv, "crm.contact", body)


def wait_message(srv, mid, timeout=15):
    deadline = time.time() + timeout
    m = None
    while time.time() < deadline:
        m = status(srv.get("%s/crm.message/%d" % (R, mid)), 200).json
        if m["status"] != "queued":
            break
        time.sleep(0.1)
    return m


def test_campaign_to_segment_received_by_the_sink(srv):
    company = crmtest.create(srv, "crm.company", {"name": "Acme & Sons"})
    eleni = contact(srv, "Ελένη", "Παπαδοπούλου", "eleni@example.gr", city="Athens",
                    company=company["id"])
    contact(srv, "Nikos", "No-Consent", "nikos@example.gr", consent=False, city="Athens")
    contact(srv, "Olga", "Elsewhere", "olga@example.ru", city="Moscow")
    contact(srv, "Dan", "Opted-Out", "dan@example.com", city="Athens", preferred_channel="none")
    contact(srv, "Noam", "No-Mail", None, city="Athens")
    seg = crmtest.create(srv, "crm.segment", {"name": "Athens", "filter": {"city": "Athens"}})
    tpl = crmtest.create(srv, "crm.email_template", {
        "name": "offer", "subject": "Hello {{contact.first_name}}, an offer",
        "body": "Dear {{ contact.first_name }} {{contact.last_name}},\n"
                "our offer for {{company.name}}:\n.\n..and a line that starts with dots\n"
                "{{campaign.name}}"})
    camp = crmtest.create(srv, "crm.campaign", {"name": "Spring", "segment": seg["id"],
                                                "template": tpl["id"]})
    before = len(SINK.mails)
    r = status(srv.post("%s/campaigns/%d/send" % (X, camp["id"])), 200, "send")
    eq(r.json["queued"], 1, "one consenting recipient")
    eq(r.json["skipped_no_consent"], 2, "no consent, opted out")
    eq(r.json["skipped_no_email"], 1, "no address")
    mails = SINK.wait(before + 1)
    eq(len(mails), before + 1, "the sink received the mail")
    sender, rcpts, data = mails[-1]
    eq(sender, "<crm@example.com>", "MAIL FROM")
    eq(rcpts, ["<eleni@example.gr>"], "RCPT TO")
    ok(b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b""), "CRLF line ends")
    msg = email.message_from_bytes(data, policy=email.policy.default)
    eq(msg["To"], "eleni@example.gr", "To")
    eq(msg["From"], "CRM Test <crm@example.com>", "From")
    eq(str(msg["Subject"]), "Hello Ελένη, an offer", "Subject (RFC 2047)")
    ok(msg["Date"] and msg["Message-ID"], "Date and Message-ID headers")
    body = msg.get_content()
    eq(body.replace("\r\n", "\n"),
       "Dear Ελένη Παπαδοπούλου,\nour offer for Acme & Sons:\n.\n..and a line that starts "
       "with dots\nSpring", "body")
    # the outbox records the delivery
    msgs = status(srv.get("%s/crm.message?campaign=%d" % (R, camp["id"])), 200).json["data"]
    eq(len(msgs), 1, "one message")
    m = wait_message(srv, msgs[0]["id"])
    eq(m["status"], "sent", "status")
    eq(m["attempts"], 1, "attempts")
    eq(m["contact"], eleni["id"], "contact")
    ok(m["sent_at"], "sent_at")
    c = status(srv.get("%s/crm.campaign/%d" % (R, camp["id"])), 200).json
    eq((c["status"], c["sent_count"]), ("done", 1), "campaign done")
    # a campaign is sent once
    error(srv.post("%s/campaigns/%d/send" % (X, camp["id"])), 409, field="status")
    eq(crmtest.count(srv, "crm.message", "&campaign=%d" % camp["id"]), 1, "not queued twice")


def test_templates_render_safely(srv):
    n = crmtest.count(srv, "crm.email_template")
    for body in ("{{contact.first_name", "{{ contact }}", "{{system.password}}",
                 "{{contact.first_name | upper}}", "{{contact.first_name()}}",
                 "{{{contact.first_name}}}", "{{ contact.first-name }}", "{{}}",
                 "{{os.execute('id')}}", "{{contact.a.b}}"):
        error(srv.post(R + "/crm.email_template", {"name": "bad", "subject": "s", "body": body}),
              400, field="body", what=body)
    error(srv.post(R + "/crm.email_template", {"name": "bad", "subject": "{{x.y}}", "body": ""}),
          400, field="subject", what="subject")
    eq(crmtest.count(srv, "crm.email_template"), n, "nothing written")

    evil = contact(srv, "{{contact.email}}<script>alert(1)</script>", "O'Brien & \"Co\"",
                   "evil@example.com", notes="x" * 10000)
    html = crmtest.create(srv, "crm.email_template", {
        "name": "html", "format": "html", "subject": "Hi {{contact.first_name}}",
        "body": "<p>Hi {{contact.first_name}} {{contact.last_name}}{{contact.nonexistent}}</p>"})
    r = status(srv.post("%s/templates/%d/preview" % (X, html["id"]), {"contact": evil["id"]}), 200)
    eq(r.json["body"], "<p>Hi {{contact.email}}&lt;script&gt;alert(1)&lt;/script&gt; "
                       "O&#39;Brien &amp; &quot;Co&quot;</p>",
       "escaped, not re-expanded, unknown field empty")
    eq(r.json["subject"], "Hi {{contact.email}}<script>alert(1)</script>", "subject as text")
    text = crmtest.create(srv, "crm.email_template", {
        "name": "text", "subject": "s", "body": "{{contact.first_name}}|{{ company.name }}"})
    r = status(srv.post("%s/templates/%d/preview" % (X, text["id"]), {"contact": evil["id"]}), 200)
    eq(r.json["body"], "{{contact.email}}<script>alert(1)</script>|", "text: as is")
    # bounded: 30 × 10,000 characters is past the message's body size
    big = crmtest.create(srv, "crm.email_template", {"name": "big", "subject": "s",
                                                      "body": "{{contact.notes}}" * 30})
    error(srv.post("%s/templates/%d/preview" % (X, big["id"]), {"contact": evil["id"]}), 422,
          field="body", what="too long")
    # bad input
    error(srv.post("%s/templates/x/preview" % X, {"contact": evil["id"]}), 400, field="id")
    error(srv.post("%s/templates/%d/preview" % (X, text["id"]), {"contact": "1"}), 400,
          field="contact")
    error(srv.post("%s/templates/%d/preview" % (X, text["id"]), {}), 400, field="contact")
    error(srv.post("%s/templates/999999/preview" % X, {"contact": evil["id"]}), 404)
    error(srv.post("%s/templates/%d/preview" % (X, text["id"]), {"contact": 999999}), 404)


def test_campaign_bad_input_writes_nothing(srv):
    tpl = crmtest.create(srv, "crm.email_template", {"name": "t2", "subject": "s", "body": "b"})
    seg = crmtest.create(srv, "crm.segment", {"name": "all", "filter": None})
    bad_seg = crmtest.create(srv, "crm.segment", {"name": "bad", "filter": {"no_such": "x"}})
    odd_seg = crmtest.create(srv, "crm.segment", {"name": "odd", "filter": {"limit": 5}})
    list_seg = crmtest.create(srv, "crm.segment", {"name": "list", "filter": [1]})
    deal_seg = crmtest.create(srv, "crm.segment", {"name": "deals", "type": "crm.deal"})
    messages = crmtest.count(srv, "crm.message")
    error(srv.post(X + "/campaigns/abc/send"), 400, field="id")
    error(srv.post(X + "/campaigns/0/send"), 400, field="id")
    error(srv.post(X + "/campaigns/999999/send"), 404)
    c = crmtest.create(srv, "crm.campaign", {"name": "no segment", "template": tpl["id"]})
    error(srv.post("%s/campaigns/%d/send" % (X, c["id"])), 400, field="segment")
    c = crmtest.create(srv, "crm.campaign", {"name": "no template", "segment": seg["id"]})
    error(srv.post("%s/campaigns/%d/send" % (X, c["id"])), 400, field="template")
    for s in (bad_seg, odd_seg, list_seg):
        c = crmtest.create(srv, "crm.campaign", {"name": "bad " + s["name"], "segment": s["id"],
                                                 "template": tpl["id"]})
        error(srv.post("%s/campaigns/%d/send" % (X, c["id"])), 400, field="filter", what=s["name"])
        eq(status(srv.get("%s/crm.campaign/%d" % (R, c["id"])), 200).json["status"], "draft",
           "campaign untouched")
    c = crmtest.create(srv, "crm.campaign", {"name": "deals", "segment": deal_seg["id"],
                                             "template": tpl["id"]})
    error(srv.post("%s/campaigns/%d/send" % (X, c["id"])), 400, field="segment")
    eq(crmtest.count(srv, "crm.message"), messages, "no message queued")
    # a read-only user may see the campaign but not send it: nothing queued
    _, token = crmtest.user_with_role(srv, "reader", "read-only")
    c = crmtest.create(srv, "crm.campaign", {"name": "ok", "segment": seg["id"],
                                             "template": tpl["id"]})
    contact(srv, "Ro", "Reader", "ro@example.com")
    error(srv.post("%s/campaigns/%d/send" % (X, c["id"]), token=token), 403)
    eq(crmtest.count(srv, "crm.message"), messages, "still none")
    error(srv.post("%s/campaigns/%d/send" % (X, c["id"]), token=""), 401)


def test_failed_delivery_recorded(srv):
    """Connection refused: the message is failed with the error and a next attempt."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there
    s = crmtest.server("mail.smtp_url = smtp://127.0.0.1:%d\nmail.from = crm@example.com\n" % port)
    try:
        m = crmtest.create(s, "crm.message", {"to": "x@example.com", "subject": "s", "body": "b"})
        m = wait_message(s, m["id"])
        eq(m["status"], "failed", "status")
        eq(m["attempts"], 1, "attempts")
        ok("smtp" in (m["error"] or ""), "error recorded: %r" % m["error"])
        ok(m["next_attempt_at"], "a next attempt is planned")
        # a message stored as already sent (an import) is a record, not mail to send
        old = crmtest.create(s, "crm.message", {"to": "y@example.com", "subject": "s",
                                                "status": "sent"})
        m2 = crmtest.create(s, "crm.message", {"to": "z@example.com", "subject": "later"})
        wait_message(s, m2["id"])  # delivered in order: the first one was handled before
        old = status(s.get("%s/crm.message/%d" % (R, old["id"])), 200).json
        eq((old["status"], old["attempts"], old["error"]), ("sent", 0, None), "left alone")
    finally:
        s.close()


T0 = 1893488400  # 2030-01-01T09:00:00Z


def test_refused_mail_retried_with_backoff(srv):
    """The server refuses (550): failed, the error kept, next_attempt_at 5 minutes on (the
    platform's clock); ten minutes later (restart with the clock moved) the retry schedule
    sends it again: one is taken, the other refused again and, at mail.max_attempts = 2,
    given up."""
    sink = crmtest.SmtpSink()
    sink.refuse = {"later@example.com", "never@example.com"}
    s = crmtest.server("mail.smtp_url = %s\nmail.from = crm@example.com\nmail.max_attempts = 2\n"
                       % sink.url(), env={"CRM_CLOCK": str(T0)})
    try:
        later = crmtest.create(s, "crm.message", {"to": "later@example.com", "subject": "one"})
        never = crmtest.create(s, "crm.message", {"to": "never@example.com", "subject": "two"})
        for m in (later, never):
            m = wait_message(s, m["id"])
            eq((m["status"], m["attempts"]), ("failed", 1), "first attempt failed")
            ok("550" in m["error"], "the server's answer recorded: %r" % m["error"])
            eq(m["next_attempt_at"], "2030-01-01T09:05:00Z", "retry in 5 minutes")
            eq(m["sent_at"], None, "not sent")
        eq(sink.mails, [], "nothing taken")

        sink.refuse = {"never@example.com"}
        crmtest.restart(s, clock=T0 + 600)
        m = crmtest.wait_for(lambda: (lambda x: x["status"] == "sent" and x)(
            status(s.get("%s/crm.message/%d" % (R, later["id"])), 200).json))
        ok(m, "the retry was sent")
        eq((m["attempts"], m["sent_at"], m["error"], m["next_attempt_at"]),
           (2, "2030-01-01T09:10:00Z", None, None), "sent on the second attempt, at the clock's time")
        eq([x[1] for x in sink.wait(1)], [["<later@example.com>"]], "the sink took it")
        m = crmtest.wait_for(lambda: (lambda x: x["attempts"] == 2 and x)(
            status(s.get("%s/crm.message/%d" % (R, never["id"])), 200).json))
        ok(m, "the other was tried again")
        eq((m["status"], m["next_attempt_at"]), ("failed", None), "given up after 2 attempts")
        ok("550" in m["error"] and "gave up after 2 attempts" in m["error"], m["error"])
        # an operator sends it again by queueing it
        sink.refuse = set()
        status(s.patch("%s/crm.message/%d" % (R, never["id"]), {"status": "queued"}), 200)
        m = crmtest.wait_for(lambda: (lambda x: x["status"] == "sent" and x)(
            status(s.get("%s/crm.message/%d" % (R, never["id"])), 200).json))
        ok(m, "re-queued and sent")
        eq(m["attempts"], 3, "attempts count on")
    finally:
        s.close()


def test_rule_mail_queue_delivered(srv):
    """crm.mail.queue in a site rule → core.mail.queued → a crm.message → the sink."""
    import os
    import tempfile
    scripts = tempfile.mkdtemp(prefix="crm-b-scripts-")
    with open(os.path.join(scripts, "ack.lua"), "w") as f:
        f.write('rule { name = "ack a ticket", on = "crm.ticket.created",\n'
                '  run = function(ev) crm.mail.queue{ to = "customer@example.com",\n'
                '    template = "ack", record = ev.record } end }\n')
    s = crmtest.server("mail.smtp_url = smtp://127.0.0.1:%d\nmail.from = crm@example.com\n"
                       % SINK.port, scripts=scripts)
    try:
        crmtest.create(s, "crm.email_template", {"name": "ack", "subject": "Re: {{record.subject}}",
                                                 "body": "We got <{{record.subject}}>."})
        before = len(SINK.mails)
        crmtest.create(s, "crm.ticket", {"subject": "Broken\r\nBcc: x@evil.example"})
        mails = SINK.wait(before + 1)
        eq(len(mails), before + 1, "delivered")
        eq(mails[-1][1], ["<customer@example.com>"], "only the rule's recipient")
        msg = email.message_from_bytes(mails[-1][2], policy=email.policy.default)
        eq(str(msg["Subject"]), "Re: Broken  Bcc: x@evil.example", "no header injection")
        eq(msg["Bcc"], None, "no Bcc header")
        eq(msg.get_content().replace("\r\n", "\n").strip(), "We got <Broken\nBcc: x@evil.example>.",
           "body: text as is")
    finally:
        s.close()


def test_suggestions_from_similar_customers(srv):
    p = [crmtest.create(srv, "crm.product", {"name": "Product %d" % i, "sku": "SKU-S%d" % i})
         for i in range(5)]
    c1 = contact(srv, "Ann", "One", "ann@example.com")
    c2 = contact(srv, "Ben", "Two", "ben@example.com")
    c3 = contact(srv, "Cat", "Three", "cat@example.com")
    c4 = contact(srv, "Dov", "Four", "dov@example.com")

    def won(c, products, stage="won"):
        crmtest.create(srv, "crm.deal", {
            "name": "deal", "contact": c["id"], "stage": stage, "amount": "100.00",
            "lines": [{"product": x["id"], "quantity": 1, "price": "10.00"} for x in products]})
    won(c1, [p[0], p[1]])
    won(c2, [p[0], p[1]])
    won(c2, [p[2]])
    won(c3, [p[3]])
    won(c3, [p[4]], stage="explore")  # not bought: an open deal
    r = status(srv.get("%s/suggestions/%d" % (X, c1["id"])), 200)
    eq([x["product"] for x in r.json["data"]], [p[2]["id"]], "what the similar customer bought")
    eq(r.json["data"][0]["name"], "Product 2", "name")
    r = status(srv.get("%s/suggestions/%d" % (X, c4["id"])), 200)
    eq(r.json["basis"], "most bought", "no history")
    eq([x["product"] for x in r.json["data"]][:2], [p[0]["id"], p[1]["id"]], "most bought first")
    ok(p[4]["id"] not in [x["product"] for x in r.json["data"]], "open deals do not count")
    eq(len(status(srv.get("%s/suggestions/%d?limit=1" % (X, c4["id"])), 200).json["data"]), 1,
       "limit")
    error(srv.get("%s/suggestions/x" % X), 400, field="contact_id")
    error(srv.get("%s/suggestions/%d?limit=0" % (X, c1["id"])), 400, field="limit")
    error(srv.get("%s/suggestions/%d?limit=1000" % (X, c1["id"])), 400, field="limit")
    error(srv.get("%s/suggestions/999999" % X), 404)


if __name__ == "__main__":
    lib.run(globals(), "plugin_crm_b_retain")
