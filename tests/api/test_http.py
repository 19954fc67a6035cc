"""
test_http.py — the HTTP layer (kernel/http.c, `crm serve`): routing errors,
security headers, body and header limits, request smuggling, JSON bounds,
keep-alive, the access log, metrics, graceful shutdown and the per-IP limit.
"""
import http.client
import json
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import eq, error, ok, status  # noqa: E402

LOGIN = "/api/v1/auth/login"


def head_of(data):
    """Status code and lower-cased headers of a raw HTTP response."""
    text = data.decode("latin-1")
    if not text.startswith("HTTP/1."):
        return None, {}, ""
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    code = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return code, headers, body


def check_security_headers(r, what):
    eq(r.header("X-Content-Type-Options"), "nosniff", what + " nosniff")
    eq(r.header("Referrer-Policy"), "same-origin", what + " Referrer-Policy")
    eq(r.header("Cache-Control"), "no-store", what + " Cache-Control")
    ok(r.header("X-Request-Id"), what + ": X-Request-Id")


def test_healthz(srv):
    for path in ("/api/v1/healthz", "/healthz", "/health"):
        r = status(srv.get(path, token=""), 200, path)
        eq(r.json, {"status": "ok"}, path)


def test_unknown_path_is_json_404(srv):
    r = error(srv.get("/api/v1/no/such/thing"), 404, "not_found")
    check_security_headers(r, "404")
    error(srv.get("/"), 404, "not_found")


def test_wrong_method_is_405_with_allow(srv):
    r = error(srv.delete("/api/v1/healthz"), 405, "method_not_allowed")
    allow = [m.strip() for m in (r.header("Allow") or "").split(",")]
    ok("GET" in allow, "Allow lists GET: %r" % allow)
    r = error(srv.get(LOGIN, token=""), 405)
    ok("POST" in r.header("Allow"), "Allow lists POST")


def test_security_headers_everywhere(srv):
    check_security_headers(srv.get("/api/v1/healthz"), "healthz")
    check_security_headers(srv.get("/api/v1/auth/me"), "me")
    r = error(srv.get("/api/v1/auth/me", token=""), 401)
    check_security_headers(r, "401")
    r = error(srv.post(LOGIN, {"username": "admin", "password": "wrong-password"}, token=""), 401)
    check_security_headers(r, "login error")
    r = error(srv.request("POST", LOGIN, raw="{", token="",
                          headers={"Content-Type": "application/json"}), 400)
    check_security_headers(r, "bad JSON")


def test_unauthenticated_is_401_with_challenge(srv):
    r = error(srv.get("/api/v1/auth/me", token=""), 401, "unauthenticated")
    eq(r.header("WWW-Authenticate"), "Bearer", "WWW-Authenticate")
    error(srv.get("/api/v1/auth/me", token="crm_not-a-real-token"), 401, "unauthenticated")
    error(srv.get("/api/v1/auth/me", headers={"Authorization": "Basic YWRtaW46eA=="}, token=""),
          401)


def test_huge_content_length_is_413_before_the_body(srv):
    t0 = time.time()
    data = srv.raw(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    "Content-Length: 2147483648\r\n\r\n" % LOGIN).encode(), timeout=5)
    took = time.time() - t0
    code, headers, body = head_of(data)
    eq(code, 413, "status")
    eq(json.loads(body)["error"]["code"], "body_too_large", "code")
    ok(took < 1.0, "413 took %.3f s" % took)
    eq(headers.get("connection"), "close", "Connection header")
    status(srv.get("/healthz"), 200, "still serving")


def test_content_length_over_limit_on_any_route(srv):
    data = srv.raw(b"PUT /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n", timeout=5)
    eq(head_of(data)[0], 413, "status")


def send_chunked(srv, total, chunk=64 * 1024, path=LOGIN, pause=0.0):
    """Stream a chunked body of `total` bytes; return what the server answered."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    got = b""
    try:
        s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n" % path).encode())
        sent = 0
        piece = b"[" + b"1," * (chunk // 2 - 1) + b"1"
        while sent < total:
            try:
                s.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
            if pause:
                time.sleep(pause)
        try:
            s.sendall(b"0\r\n\r\n")
        except OSError:
            pass
        s.settimeout(5)
        while True:
            try:
                c = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not c:
                break
            got += c
    finally:
        s.close()
    return got, sent


def test_chunked_body_over_limit_is_413(srv):
    got, sent = send_chunked(srv, 4 << 20)
    code, headers, body = head_of(got)
    eq(code, 413, "status (sent %d bytes)" % sent)
    eq(json.loads(body)["error"]["code"], "body_too_large", "code")
    status(srv.get("/healthz"), 200, "still serving")


def test_chunked_body_within_limit_is_read(srv):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    body = json.dumps({"username": "admin", "password": lib.ADMIN_PASSWORD}).encode()
    s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" % LOGIN).encode())
    s.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    data = b""
    while True:
        c = s.recv(65536)
        if not c:
            break
        data += c
    s.close()
    eq(head_of(data)[0], 200, "chunked login")


def test_smuggling_framing_is_400(srv):
    both = srv.raw(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" % LOGIN)
                   .encode(), timeout=5)
    eq(head_of(both)[0], 400, "Content-Length + Transfer-Encoding")
    two = srv.raw(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}" % LOGIN).encode(), timeout=5)
    eq(head_of(two)[0], 400, "two Content-Length")
    bad_te = srv.raw(("POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                      "0\r\n\r\n" % LOGIN).encode(), timeout=5)
    eq(head_of(bad_te)[0], 400, "Transfer-Encoding other than chunked")
    status(srv.get("/healthz"), 200, "still serving")


def test_huge_headers_rejected(srv):
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    for i in range(100):
        req += b"X-Filler-%d: %s\r\n" % (i, b"a" * 1000)
    req += b"\r\n"
    try:
        data = srv.raw(req, timeout=5)
    except ConnectionResetError:
        data = b""
    code = head_of(data)[0]
    ok(code in (400, 413, 414, 431) or data == b"", "100 KiB of headers: %r" % data[:100])
    status(srv.get("/healthz"), 200, "still serving")


def post_json_raw(srv, body, ctype="application/json", path=LOGIN):
    return srv.request("POST", path, raw=body, token="", headers={"Content-Type": ctype})


def test_deep_json_is_400_fast(srv):
    body = "[" * 100000
    t0 = time.time()
    r = post_json_raw(srv, body)
    took = time.time() - t0
    error(r, 400, "json_too_deep")
    ok(took < 1.0, "deep JSON took %.3f s" % took)
    error(post_json_raw(srv, '{"a":' * 65 + "1" + "}" * 65), 400, "json_too_deep")
    # 64 levels are fine for the parser; the handler then says what it thinks.
    r = post_json_raw(srv, "[" * 64 + "]" * 64)
    ok(r.error_code() != "json_too_deep", "64 levels accepted by the parser")


def b36(n):
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    s = ""
    while True:
        n, d = divmod(n, 36)
        s = digits[d] + s
        if n == 0:
            return s


def test_json_with_too_many_items_is_400(srv):
    body = "{" + ",".join('"%s":0' % b36(i) for i in range(100000)) + "}"
    ok(len(body) < 1 << 20, "body fits the size limit (%d)" % len(body))
    error(post_json_raw(srv, body), 400, "json_too_large")
    error(post_json_raw(srv, "[" + ",".join("1" for _ in range(20000)) + "]"), 400,
          "json_too_large")


def test_invalid_utf8_is_400(srv):
    r = post_json_raw(srv, b'{"username":"\xff\xfe","password":"admin-password-1"}')
    error(r, 400, "invalid_json")
    r = post_json_raw(srv, b'{"username":"ad\xc0\xafmin","password":"x"}')  # overlong "/"
    error(r, 400, "invalid_json")


def test_duplicate_keys_are_400(srv):
    r = post_json_raw(srv, '{"username":"admin","username":"other","password":"x"}')
    error(r, 400, "invalid_json")
    ok("duplicate" in r.json["error"]["message"], "message names the problem: %r" % r.body)


def test_broken_json_names_the_position(srv):
    r = error(post_json_raw(srv, '{"username": "admin",\n "password": }'), 400, "invalid_json")
    ok("line 2" in r.json["error"]["message"], "message has the line: %r" % r.body)
    error(post_json_raw(srv, '"just a string"'), 400, "invalid_json")
    error(post_json_raw(srv, '{"username":"a\\u0000b","password":"x"}'), 400, "invalid_json")


def test_wrong_types_are_400(srv):
    error(srv.post(LOGIN, {"username": 1, "password": "x"}, token=""), 400, field="username")
    error(srv.post(LOGIN, {"username": "admin", "password": ["x"]}, token=""), 400,
          field="password")
    error(srv.post(LOGIN, [1, 2], token=""), 400, "invalid")
    uid = srv.user_id("admin")
    error(srv.patch("/api/v1/users/%d" % uid, {"disabled": "yes"}), 400, field="disabled")
    error(srv.get("/api/v1/users/abc"), 400, field="id")
    error(srv.get("/api/v1/users/-1"), 400, field="id")
    error(srv.get("/api/v1/users/99999999999999999999"), 400, field="id")


def test_non_json_content_type_is_415(srv):
    body = json.dumps({"username": "admin", "password": lib.ADMIN_PASSWORD})
    error(post_json_raw(srv, body, "text/plain"), 415, "unsupported_media_type")
    error(post_json_raw(srv, body, "application/x-www-form-urlencoded"), 415)
    error(post_json_raw(srv, body, "application/json; charset=latin-1"), 415)
    status(post_json_raw(srv, body, "application/json; charset=utf-8"), 200, "charset=utf-8")
    status(post_json_raw(srv, body, "Application/JSON"), 200, "case-insensitive type")


def test_percent_encoded_path(srv):
    # %2F stays inside its segment: no route has a matching shape.
    error(srv.get("/api/v1/users/1%2F2"), 400, field="id")
    status(srv.get("/api/v1/%75sers/1"), 200, "%75 decodes to u")
    error(srv.get("/api/v1/users/%zz"), 400)
    status(srv.get("/api/v1/users/"), 200, "trailing slash forgiven")


def test_keep_alive(srv):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    try:
        f = s.makefile("rb")
        for i in range(3):
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            line = f.readline()
            eq(line.split()[1], b"200", "status of request %d on one socket" % (i + 1))
            length = 0
            while True:
                h = f.readline()
                if h in (b"\r\n", b""):
                    break
                k, _, v = h.decode().partition(":")
                if k.lower() == "content-length":
                    length = int(v)
                ok(k.lower() != "connection" or "close" not in v.lower(), "no Connection: close")
            f.read(length)
    finally:
        s.close()
    # And with http.client: the same socket serves two requests.
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    conn.request("GET", "/healthz")
    r = conn.getresponse()
    r.read()
    sock = conn.sock
    conn.request("POST", LOGIN, body=json.dumps({"username": "admin", "password": "x" * 8}),
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    eq(r.status, 401, "second request")
    ok(conn.sock is sock and sock is not None, "the connection was kept")
    conn.close()


def test_access_log_is_json_without_secrets(srv):
    token = srv.token
    srv.get("/api/v1/auth/me?secret=query-secret-value")
    srv.post(LOGIN, {"username": "admin", "password": "wrong-password-xyz"}, token="")
    r = srv.browser_login_response()
    cookie = lib.session_cookie(r)
    srv.get("/api/v1/auth/me", token="", headers={"Cookie": cookie})
    srv.get("/api/v1/nothing-here")
    time.sleep(0.2)
    log = srv.read_log()
    entries = []
    for line in log.splitlines():
        if line.startswith("{"):
            e = json.loads(line)
            for k in ("t", "method", "path", "status", "us", "user", "bytes"):
                ok(k in e, "access log has %s: %s" % (k, line))
            entries.append(e)
    ok(any(e["path"] == "/api/v1/auth/me" and e["status"] == 200 and e["user"] for e in entries),
       "me logged with its user")
    ok(any(e["path"] == "/api/v1/nothing-here" and e["status"] == 404 for e in entries),
       "404 logged")
    for secret in (lib.ADMIN_PASSWORD, "wrong-password-xyz", token, token[5:],
                   r.json["token"][5:], r.json["csrf_token"], "query-secret-value"):
        ok(secret not in log, "secret %r... not in the log" % secret[:8])


def test_metrics(srv):
    for _ in range(3):
        srv.get("/api/v1/healthz")
    srv.get("/api/v1/nope")
    r = status(srv.get("/metrics"), 200)
    ok(r.header("Content-Type").startswith("text/plain"), "text/plain")
    text = r.body
    ok('crm_http_requests_total{route="/api/v1/healthz",method="GET",status="200"} 3' in text,
       "healthz counter: %s" % text[:800])
    ok('route="unmatched"' in text and 'status="404"' in text, "404 counted")
    for name in ("crm_http_request_duration_seconds_bucket{le=\"+Inf\"}",
                 "crm_http_request_duration_seconds_count", "crm_db_size_bytes",
                 "crm_outbox_lag_events", "crm_http_connections"):
        ok(name in text, name + " present")
    size = [l for l in text.splitlines() if l.startswith("crm_db_size_bytes ")]
    ok(size and int(size[0].split()[1]) > 0, "db size > 0")
    error(srv.get("/metrics", token=""), 401)
    _, token = srv.user("viewer")
    error(srv.get("/metrics", token=token), 403, "denied")


def test_graceful_shutdown_during_slow_upload(srv):
    # Half a request line (slowloris) and half a body: neither holds the stop up.
    loris = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    loris.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "Content-Length: 500000\r\n\r\n{\"username\":" % LOGIN).encode())
    time.sleep(0.3)
    t0 = time.time()
    srv.proc.send_signal(signal.SIGTERM)
    try:
        rc = srv.proc.wait(10)
    except Exception:  # noqa: BLE001
        rc = None
    took = time.time() - t0
    s.close()
    loris.close()
    eq(rc, 0, "exit code")
    ok(took < 5, "stopped in %.1f s" % took)
    ok("stopped" in srv.read_log(), "logged its stop")
    srv.proc = None
    srv.start()
    status(srv.get("/healthz"), 200, "restarted on the same data")
    status(srv.get("/api/v1/auth/me"), 200, "session survives a restart")


def test_in_flight_requests_finish_at_stop(srv):
    # Logins are slow (Argon2id): one in flight when SIGTERM arrives completes.
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    body = json.dumps({"username": "admin", "password": lib.ADMIN_PASSWORD}).encode()
    s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "Content-Length: %d\r\n\r\n" % (LOGIN, len(body))).encode() + body)
    time.sleep(0.02)
    srv.proc.send_signal(signal.SIGTERM)
    data = b""
    while True:
        try:
            c = s.recv(65536)
        except OSError:
            break
        if not c:
            break
        data += c
    s.close()
    eq(head_of(data)[0], 200, "in-flight login answered")
    eq(srv.proc.wait(10), 0, "exit code")
    srv.proc = None


def test_request_deadline_cuts_dribbled_body():
    srv = lib.Server(extra_args=["--deadline", "2"]).start()
    try:
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Content-Length: 1000\r\n\r\n" % LOGIN).encode())
        t0 = time.time()
        data = b""
        while time.time() - t0 < 8:
            try:
                s.sendall(b" ")
            except OSError:
                break
            s.settimeout(0.5)
            try:
                c = s.recv(65536)
                if not c:
                    break
                data += c
            except socket.timeout:
                pass
            except OSError:
                break
        s.close()
        took = time.time() - t0
        eq(head_of(data)[0], 408, "status after %.1f s: %r" % (took, data[:80]))
        ok(took < 5, "cut after %.1f s" % took)
        status(srv.get("/healthz"), 200, "still serving")
    finally:
        srv.close()


def test_per_ip_connection_limit(srv):
    """32 connections per address (the default): a 33rd is closed at once. A connection of
    an earlier request from this address may still be closing on the server's side, so the
    test opens 33, asks on each, and checks that at most 32 were served and the others
    were closed (not left hanging)."""
    socks = []
    try:
        for _ in range(33):
            socks.append(socket.create_connection(("127.0.0.1", srv.port), timeout=5))
        time.sleep(0.2)
        served = closed = hung = 0
        for s in socks:
            s.settimeout(3)
            try:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                got = s.recv(1024)
            except (ConnectionResetError, BrokenPipeError):
                got = b""
            except socket.timeout:
                got = None
            if got is None:
                hung += 1
            elif got.startswith(b"HTTP/1.1 200"):
                served += 1
            else:
                eq(got, b"", "a refused connection is closed, not answered")
                closed += 1
        eq(hung, 0, "no connection left hanging")
        ok(served <= 32, "at most 32 served from one address: %d" % served)
        ok(closed >= 1, "the connection over the limit is closed")
        ok(served >= 30, "the limit is 32, not fewer: %d served" % served)
        # Another address is still served (127.0.0.2 reaches 127.0.0.1 over lo).
        other = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        other.settimeout(5)
        other.bind(("127.0.0.2", 0))
        other.connect(("127.0.0.1", srv.port))
        other.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        eq(head_of(other.recv(4096))[0], 200, "another client address")
        other.close()
    finally:
        for s in socks:
            s.close()
    time.sleep(0.3)
    status(srv.get("/healthz"), 200, "served again after the others closed")


def test_global_connection_limit():
    srv = lib.Server(extra_args=["--max-connections", "8", "--per-ip", "0"]).start()
    socks = []
    try:
        for _ in range(8):
            socks.append(socket.create_connection(("127.0.0.1", srv.port), timeout=5))
        time.sleep(0.2)
        extra = socket.create_connection(("127.0.0.1", srv.port), timeout=3)
        try:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            got = extra.recv(1024)
        except (ConnectionResetError, BrokenPipeError):
            got = b""
        except socket.timeout:
            got = b"(timeout)"
        extra.close()
        eq(got, b"", "the connection over the limit is closed")
        for s in socks:
            s.close()
        socks = []
        t0 = time.time()
        while True:
            try:
                r = srv.get("/healthz", timeout=2)
                if r.status == 200:
                    break
            except OSError:
                pass
            ok(time.time() - t0 < 1.5, "service resumes within a second")
            time.sleep(0.05)
    finally:
        for s in socks:
            s.close()
        srv.close()


def test_ipv6_listen():
    srv = lib.Server()
    try:
        import subprocess
        p = subprocess.Popen([lib.CRM, "--data", srv.data, "serve", "--listen", "[::1]:0"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=srv.env)
        try:
            line = p.stdout.readline().decode()
            ok(line.startswith("listening on http://[::1]:"), "announces [::1]: %r" % line)
            port = int(line.rsplit(":", 1)[1])
            s = socket.create_connection(("::1", port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            eq(head_of(s.recv(4096))[0], 200, "served over IPv6")
            s.close()
        finally:
            p.terminate()
            eq(p.wait(10), 0, "exit code")
    finally:
        srv.close()


def test_head_request(srv):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    conn.request("HEAD", "/healthz")
    r = conn.getresponse()
    eq(r.status, 200, "HEAD status")
    eq(r.read(), b"", "HEAD has no body")
    conn.close()


if __name__ == "__main__":
    # test_request_deadline_cuts_dribbled_body makes its own server.
    deadline_test = test_request_deadline_cuts_dribbled_body
    globals()["test_request_deadline_cuts_dribbled_body"] = lambda srv: deadline_test()
    for name in ("test_global_connection_limit", "test_ipv6_listen"):
        globals()[name] = (lambda f: lambda srv: f())(globals()[name])
    lib.run(globals(), "api_http")
