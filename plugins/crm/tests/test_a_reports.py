"""
Reports and the forecast on known data: the values, CSV export, and the
board's totals. Dates are relative to today (created_at is the server's clock).
"""
import datetime

import crmtest
from crmtest import R, X, lib
from lib import eq, ok, status

TODAY = datetime.datetime.now(datetime.timezone.utc)


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def last_month_mid():
    first = TODAY.replace(day=1)
    return (first - datetime.timedelta(days=1)).replace(day=15, hour=12, minute=0, second=0)


def quarter_start(t):
    return t.replace(month=(t.month - 1) // 3 * 3 + 1, day=1, hour=0, minute=0, second=0,
                     microsecond=0)


class World:
    pass


W = World()


def shared_server():
    srv = crmtest.server()
    mk = lambda f: crmtest.create(srv, "crm.deal", f)  # noqa: E731
    mk({"name": "A", "stage": "explore", "amount": "1000", "close_date": "2031-01-10"})
    mk({"name": "B", "stage": "proposal", "amount": "2000", "close_date": "2031-01-20"})
    mk({"name": "C", "stage": "negotiation", "amount": "500.50", "close_date": "2031-02-05"})
    W.won = mk({"name": "D", "stage": "negotiation", "amount": "3000"})["id"]
    status(srv.patch("%s/crm.deal/%d" % (R, W.won), {"stage": "won"}), 200)  # closed now
    mk({"name": "E", "stage": "won", "amount": "1500", "closed_at": iso(last_month_mid())})
    mk({"name": "F", "stage": "lost", "amount": "700"})
    # leads converted this quarter (2) and last (1)
    q = quarter_start(TODAY)
    last_q = quarter_start(q - datetime.timedelta(days=1))
    for when in (q + datetime.timedelta(hours=1), q + datetime.timedelta(hours=2),
                 last_q + datetime.timedelta(days=3)):
        crmtest.create(srv, "crm.lead", {"first_name": "L", "email": "l@example.org",
                                         "status": "converted", "converted_at": iso(when)})
    # tickets resolved 2 and 4 hours after creation
    for hours in (2, 4):
        crmtest.create(srv, "crm.ticket", {
            "subject": "T%d" % hours, "priority": "high", "status": "resolved",
            "resolved_at": iso(TODAY + datetime.timedelta(hours=hours, seconds=1))})
    return srv


def report(srv, name, query=""):
    return status(srv.get("%s/reports/%s%s" % (X, name, query)), 200, name).json


def test_forecast_by_month(srv):
    f = status(srv.get(X + "/forecast?by=month"), 200).json
    eq(f["by"], "month", "by")
    eq([(r["month"], r["count"], r["amount"], r["weighted"]) for r in f["data"]],
       [("2031-01", 2, {"EUR": "3000.00"}, {"EUR": "700.00"}),
        ("2031-02", 1, {"EUR": "500.50"}, {"EUR": "300.30"})], "months")
    eq(f["total"]["weighted"], {"EUR": "1000.30"}, "total")
    # a window of close dates
    f = status(srv.get(X + "/forecast?from=2031-02-01&to=2031-12-31"), 200).json
    eq([r["month"] for r in f["data"]], ["2031-02"], "window")
    # by owner: everything is the admin's
    f = status(srv.get(X + "/forecast?by=owner"), 200).json
    eq([(r["owner"], r["count"]) for r in f["data"]], [(1, 3)], "owners")


def test_board_totals(srv):
    b = status(srv.get(X + "/board?limit=1"), 200).json
    col = {c["stage"]: c for c in b["stages"]}
    eq([c["stage"] for c in b["stages"]], ["explore", "proposal", "negotiation", "won", "lost"],
       "pipeline order")
    eq((col["won"]["count"], col["won"]["totals"], len(col["won"]["deals"])),
       (2, {"EUR": "4500.00"}, 1), "won column")
    eq(col["won"]["closed"], True, "won closes")


def test_conversion_by_stage(srv):
    r = report(srv, "conversion-by-stage")
    rows = {x["stage"]: x for x in r["rows"]}
    eq(r["deals"], 6, "deals")
    eq(r["lost"], 1, "lost")
    eq([(x["stage"], x["deals_now"], x["reached"]) for x in r["rows"]],
       [("explore", 1, 6), ("proposal", 1, 4), ("negotiation", 1, 3), ("won", 2, 2)], "reached")
    eq(rows["explore"]["conversion_pct"], None, "first stage")
    eq(rows["proposal"]["conversion_pct"], 66.67, "explore → proposal")
    eq(rows["negotiation"]["conversion_pct"], 75.0, "proposal → negotiation")
    # CSV: the rows, a header first
    r = status(srv.get("%s/reports/conversion-by-stage?format=csv" % X), 200, "csv")
    eq(r.header("Content-Type"), "text/csv; charset=utf-8", "a real CSV reply")
    lines = r.body.split("\r\n")
    eq(lines[0], "stage,probability,deals_now,reached,conversion_pct", "header")
    eq(lines[1], "explore,10,1,6,", "first row")
    eq(lines[2], "proposal,30,1,4,66.67", "second row")


def test_won_this_month_vs_last(srv):
    r = report(srv, "won-this-month-vs-last")
    rows = {x["period"]: x for x in r["rows"]}
    eq((rows["this_month"]["won"], rows["this_month"]["amount"]), (1, {"EUR": "3000.00"}), "this")
    eq((rows["last_month"]["won"], rows["last_month"]["amount"]), (1, {"EUR": "1500.00"}), "last")
    eq(r["change"], 0, "change")


def test_leads_converted_quarter_vs_last(srv):
    r = report(srv, "leads-converted-quarter-vs-last")
    rows = {x["period"]: x for x in r["rows"]}
    eq(rows["this_quarter"]["converted"], 2, "this quarter")
    eq(rows["last_quarter"]["converted"], 1, "last quarter")
    eq(rows["this_quarter"]["created"], 3, "created this quarter")
    eq(r["change"], 1, "change")


def test_sales_cycle_and_ticket_resolution(srv):
    r = report(srv, "sales-cycle")
    rows = {x["outcome"]: x for x in r["rows"]}
    # D was won right away; E was closed before it was created (imported): not counted
    eq((rows["won"]["deals"], rows["won"]["avg_days"]), (1, 0.0), "won cycle")
    eq(rows["lost"]["deals"], 1, "lost")
    r = report(srv, "ticket-resolution-time")
    rows = {x["priority"]: x for x in r["rows"]}
    eq(rows["high"]["tickets"], 2, "tickets")
    ok(abs(rows["high"]["avg_hours"] - 3.0) < 0.02, "avg hours %r" % rows["high"]["avg_hours"])
    eq(rows["low"]["avg_hours"], None, "no low tickets")
    c = status(srv.get("%s/reports/ticket-resolution-time?format=csv" % X), 200, "csv").body
    ok(c.startswith("priority,tickets,avg_hours\r\nlow,0,\r\n"), c)


def test_reports_fixed_day(srv):
    r = report(srv, "won-this-month-vs-last", "?today=2020-03-10")
    eq([x["from"] for x in r["rows"]], ["2020-03-01", "2020-02-01"], "months of ?today")
    eq(r["rows"][0]["won"], 0, "nothing then")
    r = report(srv, "leads-converted-quarter-vs-last", "?today=2020-01-05")
    eq([x["from"] for x in r["rows"]], ["2020-01-01", "2019-10-01"], "quarters across a year")


if __name__ == "__main__":
    lib.run(globals(), "plugin_crm_a_reports")
