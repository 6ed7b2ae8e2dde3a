#!/usr/bin/env python3
"""Autobahn's fuzzingserver, ported (see cases.py): a WebSocket server on
loopback that plays the server side of every selected case against a client
under test, which (like Autobahn's testee clients) connects to

  /getCaseCount                      a text message: the number of cases
  /getCaseInfo?case=N                a text message: "id description"
  /runCase?case=N&agent=NAME         runs case N (1-based): the client echoes
                                     every message and closes when asked
  /updateReports?agent=NAME          ends the run: the summary is printed

Prints "listening PORT" first, then one line per case run, "case_id
OK|NON-STRICT|INFORMATIONAL|UNIMPLEMENTED|FAILED detail", and at
/updateReports (or --timeout) per-group counts and a summary line checked
against cases.EXPECTED[side]; exits 0 when the results are as expected.

  fuzzingserver.py [--port 0] [--cases 1.*,2.*] [--exclude ...] [--count 1000]
                   [--side client] [--slack 1] [--timeout 600]
"""
import argparse
import os
import socket
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import cases as C  # noqa: E402
import wsproto  # noqa: E402


def command(sock, headers, rest, text):
    """A one-message WebSocket (the command paths), closed by the server."""
    wsproto.send_101(sock, headers)
    peer = wsproto.Peer(sock, "server", initial=rest)
    peer.send_message(text.encode())
    peer.close(1000)
    peer.wait_closed(3)
    peer.drop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cases", default="1,2,3,4,5,6,7,9,10,12,13", help="comma-separated id patterns")
    ap.add_argument("--exclude", default="", help="comma-separated id patterns left out")
    ap.add_argument("--count", type=int, default=1000, help="messages of 9.7/9.8/12/13 (Autobahn: 1000)")
    ap.add_argument("--side", default="client", choices=sorted(C.EXPECTED), help="which EXPECTED list applies")
    ap.add_argument("--timeout", type=float, default=600, help="seconds before the run is given up")
    ap.add_argument("--slack", type=float, default=1.0,
                    help="multiplies the give-up timers (Autobahn's: 1); for loaded machines")
    a = ap.parse_args()
    wsproto.SLACK = a.slack
    selected = C.select(C.build_cases(a.count), a.cases, a.exclude)

    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", a.port))
    lsock.listen(16)
    print("listening %d" % lsock.getsockname()[1], flush=True)
    deadline = time.time() + a.timeout
    results = {}
    order = []
    done = False
    while not done:
        lsock.settimeout(max(0.1, deadline - time.time()))
        try:
            sock, _ = lsock.accept()
        except socket.timeout:
            print("timeout: the client did not finish within %.0f s" % a.timeout, flush=True)
            break
        try:
            try:
                path, headers, offers, rest = wsproto.read_request(sock)
            except (OSError, ValueError, ConnectionError) as e:
                print("bad request: %s" % e, flush=True)
                continue
            u = urllib.parse.urlsplit(path)
            q = urllib.parse.parse_qs(u.query)
            n = int(q.get("case", ["0"])[0] or 0) if q.get("case", ["0"])[0].isdigit() else 0
            if u.path == "/getCaseCount":
                command(sock, headers, rest, str(len(selected)))
            elif u.path == "/getCaseInfo" and 1 <= n <= len(selected):
                command(sock, headers, rest, "%s %s" % (selected[n - 1].id, selected[n - 1].desc))
            elif u.path == "/updateReports":
                command(sock, headers, rest, "done")
                done = True
            elif u.path == "/runCase" and 1 <= n <= len(selected):
                case = selected[n - 1]
                agreed = case.choose(offers) if case.deflate and offers else None
                wsproto.send_101(sock, headers, agreed)
                peer = wsproto.Peer(sock, "server", deflate=agreed, initial=rest, handler=case)
                status, detail = case.run(peer)
                if case.id not in results:
                    order.append(case.id)
                results[case.id] = (status, detail)
                print("%s %s %s" % (case.id, status, detail), flush=True)
            else:
                sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        finally:
            try:
                sock.close()
            except OSError:
                pass
    missing = [c.id for c in selected if c.id not in results]
    if missing:
        print("not run: %d cases (%s%s)" % (len(missing), ", ".join(missing[:10]), ", ..." if len(missing) > 10 else ""),
              flush=True)
    ok = C.summarize([(cid, results[cid][0], results[cid][1]) for cid in order], a.side,
                     lambda line: print(line, flush=True))
    return 0 if ok and done and not missing else 1


if __name__ == "__main__":
    sys.exit(main())
