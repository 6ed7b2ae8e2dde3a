#!/usr/bin/env python3
"""Autobahn's fuzzingclient, ported (see cases.py): plays every selected case
as the client against a WebSocket server under test that echoes every
message (text as text, binary as binary), one connection per case.

Prints one line per case, "case_id OK|NON-STRICT|INFORMATIONAL|UNIMPLEMENTED|
FAILED detail", then per-group counts and a summary line checked against
cases.EXPECTED[side]; exits 0 when the results are as expected, 1 if not.

  fuzzingclient.py ws://127.0.0.1:9001/ [--cases 1.*,2.*] [--exclude 9.*]
                   [--count 1000] [--side server] [--slack 1] [--list]
"""
import argparse
import socket
import sys
import time
import urllib.parse

sys.path.insert(0, __import__("os").path.dirname(__file__))
import cases as C  # noqa: E402
import wsproto  # noqa: E402


def run_one(case, host, port, path):
    try:
        sock, rest, agreed, _ = wsproto.client_handshake(host, port, path, case.offers() if case.deflate else None)
    except (OSError, ValueError, ConnectionError) as e:
        return C.FAILED, "opening handshake: %s" % e
    peer = wsproto.Peer(sock, "client", deflate=agreed, initial=rest, handler=case)
    try:
        return case.run(peer)
    finally:
        try:
            sock.close()
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url", nargs="?", help="ws://host:port/path of the echo server under test")
    ap.add_argument("--cases", default="1,2,3,4,5,6,7,9,10,12,13", help="comma-separated id patterns")
    ap.add_argument("--exclude", default="", help="comma-separated id patterns left out")
    ap.add_argument("--count", type=int, default=1000, help="messages of 9.7/9.8/12/13 (Autobahn: 1000)")
    ap.add_argument("--side", default="server", choices=sorted(C.EXPECTED), help="which EXPECTED list applies")
    ap.add_argument("--list", action="store_true", help="print the selected case ids and descriptions")
    ap.add_argument("--slack", type=float, default=1.0,
                    help="multiplies the give-up timers (Autobahn's: 1); for loaded machines")
    a = ap.parse_args()
    wsproto.SLACK = a.slack
    selected = C.select(C.build_cases(a.count), a.cases, a.exclude)
    if a.list:
        for c in selected:
            print(c.id, c.desc)
        return 0
    if not a.url:
        ap.error("the URL of the server under test is needed")
    u = urllib.parse.urlsplit(a.url)
    if u.scheme != "ws":
        ap.error("only ws:// URLs")
    host, port = u.hostname, u.port or 80
    path = (u.path or "/") + ("?" + u.query if u.query else "")
    results = []
    t0 = time.time()
    for case in selected:
        status, detail = run_one(case, host, port, path)
        results.append((case.id, status, detail))
        print("%s %s %s" % (case.id, status, detail), flush=True)
    ok = C.summarize(results, a.side, lambda line: print(line, flush=True))
    print("time: %.1f s" % (time.time() - t0), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    socket.setdefaulttimeout(None)
    sys.exit(main())
