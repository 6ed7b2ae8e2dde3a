"""A port of the Autobahn|Testsuite fuzzing cases, groups 1-7, 9, 10, 12 and
13, to Python 3, written for this repository from the case definitions of
crossbario/autobahn-testsuite (autobahntestsuite/case/), which need Python 2.

Each case is data where it can be: the frames to send (steps), the events
expected back (Autobahn's "OK" list, and its "NON-STRICT" allowance where it
has one), and how the connection must end (who closes first, the close codes
the RFC allows, whether the closing handshake must be clean). The same case
runs from either side: fuzzingclient.py plays it as the client against a
server under test, fuzzingserver.py as the server against a client under
test (wsproto.Peer masks or not by its role).

Verdicts, one per case: OK, NON-STRICT (Autobahn's allowance matched),
INFORMATIONAL (7.1.6, 7.13.x: the RFC leaves the outcome open), UNIMPLEMENTED
(12.x/13.x when permessage-deflate was not agreed), FAILED. This port is as
strict as Autobahn's "Pass" plus its close column: a close code outside the
allowed ones, an unclean close where a clean one is required, a close by the
wrong endpoint, a server that does not drop TCP after the closing handshake,
and any frame of the peer that breaks RFC 6455/7692 all fail the case. It is
stricter in one point: where the RFC says the peer MUST fail the connection,
the fuzzer giving up and dropping it itself (killAfter) fails the case, where
Autobahn would report OK when nothing came back.

Differences from Autobahn, on purpose: 9.x compares the echoed bytes, not
just their length; 10.1.1 checks the echo of the auto-fragmented message (its
own frame count is the fuzzer's business); 12.x uses payloads generated here
(testdata()) instead of Autobahn's files (Faust, Lena, a PDF, JSON, HTML);
--count scales the 1000 messages of 9.7/9.8/12/13 down for CI.
"""
import fnmatch
import hashlib
import random
import struct
import time

import wsproto
from wsproto import Offer, DeflateParams

OK, NON_STRICT, FAILED, INFORMATIONAL, UNIMPLEMENTED = "OK", "NON-STRICT", "FAILED", "INFORMATIONAL", "UNIMPLEMENTED"
PASSING = (OK, NON_STRICT, INFORMATIONAL)

# ---------------------------------------------------------------------------
# Expected failures: cases the library fails today, with the RFC's reason.
# The tests fail when a case outside these lists fails, and when a listed
# case passes (then remove it here). "server": the library's ws_listen
# server against fuzzingclient.py; "client": its ws_connect client against
# fuzzingserver.py.
# ---------------------------------------------------------------------------
EXPECTED = {
    "server": {
    },
    "client": {
    },
}

# ---------------------------------------------------------------------------
# Steps (what the fuzzer does) and expectations
# ---------------------------------------------------------------------------


def F(op, payload=b"", fin=True, rsv=0, length=None, chop=None, sync=False):
    """A frame (Autobahn's sendFrame)."""
    return ("frame", op, payload, fin, rsv, length, chop, sync)


def MSG(payload, binary=False, frag=None):
    """A message, in frames of frag bytes if given (sendMessage)."""
    return ("message", payload, binary, frag)


def CLOSE(code=None, reason=b""):
    """Starts the closing handshake; code None sends the reason bytes alone."""
    return ("close", code, reason)


def WAIT(secs, tag=None):
    """continueLater: waits; goes on only while the connection is open, then
    records ("timeout", tag) if tagged."""
    return ("wait", secs, tag)


def KILL(secs):
    """killAfter: drops TCP after secs unless the connection is closed."""
    return ("kill", secs)


def CLOSE_AFTER(secs):
    """closeAfter: starts the closing handshake after secs."""
    return ("close_after", secs)


def RAW(data):
    """Raw bytes (the chops of 6.4.3/6.4.4: one frame sent in pieces)."""
    return ("raw", data)


def msg(payload, binary=False):
    return ("message", payload, binary)


def pong(payload=b""):
    return ("pong", payload)


def timeout(tag):
    return ("timeout", tag)


NORMAL = {"by_me": True, "codes": (1000,), "clean": True}
PROTOCOL_ERROR = {"by_me": False, "codes": (1002,), "clean": False}
INVALID_PAYLOAD = {"by_me": False, "codes": (1007,), "clean": False}

HELLO = b"Hello, world!"


class Case:
    """A data-driven case: steps, expected events, expected close."""

    informational = False

    def __init__(self, cid, desc, steps, ok=(), non_strict=None, close=NORMAL, suppress_close=False,
                 limit=10.0):
        self.id = cid
        self.desc = desc
        self.steps = steps
        self.expected = {OK: list(ok)}
        if non_strict is not None:
            self.expected[NON_STRICT] = list(non_strict)
        self.close_spec = close
        self.suppress_close = suppress_close
        self.limit = limit  # seconds the whole case may take (times wsproto.SLACK)
        self.behavior = None  # set by cases that judge themselves
        self.result = None
        self.received = []
        self.deflate = False

    # Run on a fresh Peer, by the side that plays the case.
    def offers(self):
        return None

    def choose(self, offers):
        return None

    def run(self, peer):
        self.received = peer.events
        self.started = time.time()
        self.on_open(peer)
        limit = self.limit * wsproto.SLACK
        peer.wait_closed(max(0.1, limit - (time.time() - self.started)))
        if peer.state != wsproto.CLOSED:
            peer.unclean_reason = peer.unclean_reason or "the case did not end within %.0f s" % limit
            peer.killed = True
            peer.drop()
            peer.wait_closed(2)
        self.duration = time.time() - self.started
        return self.verdict(peer)

    def on_open(self, peer):
        for step in self.steps:
            kind = step[0]
            if kind == "frame":
                _, op, payload, fin, rsv, length, chop, sync = step
                peer.send_frame(op, payload, fin, rsv, length, chop, sync)
            elif kind == "message":
                peer.send_message(step[1], step[2], step[3])
            elif kind == "close":
                peer.close(step[1], step[2])
            elif kind == "raw":
                peer.send_raw(step[1])
            elif kind == "kill":
                peer.after(step[1] * wsproto.SLACK, peer.kill)
            elif kind == "close_after":
                peer.after(step[1] * wsproto.SLACK, lambda: peer.close(1000))
            elif kind == "wait":
                peer.wait(step[1])
                if peer.state != wsproto.OPEN:
                    return
                if step[2] is not None:
                    with peer.cond:
                        peer.events.append(timeout(step[2]))

    # Autobahn's finishWhenDone: once every expectation matches what came
    # back, the fuzzer closes if it is the one to close.
    def finish_when_done(self, peer):
        with peer.cond:
            got = list(peer.events)
        if all(got == e for e in self.expected.values()):
            if self.close_spec["by_me"] and not self.suppress_close:
                peer.close(self.close_spec["codes"][0])

    def on_message(self, peer, data, binary):
        self.finish_when_done(peer)

    def on_ping(self, peer, data):
        self.finish_when_done(peer)

    def on_pong(self, peer, data):
        self.finish_when_done(peer)

    # -- the verdict -------------------------------------------------------

    def close_detail(self, peer):
        if peer.remote_code is not None:
            s = "close %d" % peer.remote_code
        elif peer.close_received:
            s = "close without a code"
        else:
            s = "no close frame"
        if not peer.was_clean:
            s += ", unclean: %s" % (peer.unclean_reason or "no closing handshake")
        return s

    def close_problem(self, peer):
        """Why the end of the connection breaks the rule, or None."""
        spec = self.close_spec
        if peer.killed:
            return "the peer did not %s within the case's time (the fuzzer dropped TCP)" % (
                "answer the close" if peer.closed_by_me else "fail or close the connection")
        if spec["by_me"] != peer.closed_by_me:
            if spec["by_me"]:
                return "the peer closed first (code %s); the fuzzer should have" % peer.remote_code
            return "the peer did not fail the connection: the fuzzer closed it"
        if spec["clean"] and not peer.was_clean:
            return "the closing handshake was not clean: %s" % (peer.unclean_reason or "?")
        if peer.remote_code is not None and peer.remote_code not in spec["codes"]:
            return "close code %d, the RFC wants %s" % (peer.remote_code, " or ".join(map(str, spec["codes"])))
        if not peer.was_clean and peer.unclean_reason and "did not close TCP" in peer.unclean_reason:
            return peer.unclean_reason
        return None

    def verdict(self, peer):
        detail = self.close_detail(peer)
        if peer.violation:
            return FAILED, "peer broke a rule: %s; %s" % (peer.violation, detail)
        if self.behavior == UNIMPLEMENTED:
            return UNIMPLEMENTED, self.result or "permessage-deflate was not agreed"
        got = list(peer.events)
        if self.behavior is not None:
            behavior = self.behavior
        else:
            behavior = None
            for k in (OK, NON_STRICT):
                if k in self.expected and got == self.expected[k]:
                    behavior = k
                    break
        problem = self.close_problem(peer)
        if self.informational:
            return INFORMATIONAL, "%s; %s%s" % (self.result or events_text(got), detail,
                                                "; " + problem if problem else "")
        if behavior in (None, FAILED):
            return FAILED, "%s; %s" % (self.result or "got %s, expected %s" % (
                events_text(got), events_text(self.expected[OK])), detail)
        if problem:
            return FAILED, "%s; %s" % (problem, detail)
        extra = " (%d ms)" % (1000 * self.duration) if self.duration >= 0.05 else ""
        return behavior, (self.result + "; " if self.result else "") + detail + extra


def events_text(events):
    if not events:
        return "nothing"
    out = []
    for e in events[:6]:
        if e[0] == "message":
            out.append("%s message %s" % ("binary" if e[2] else "text", short(e[1])))
        elif e[0] == "timeout":
            out.append("timeout " + e[1])
        else:
            out.append("%s %s" % (e[0], short(e[1])))
    if len(events) > 6:
        out.append("... (%d events)" % len(events))
    return "[" + ", ".join(out) + "]"


def short(b):
    if len(b) > 24:
        return "%d bytes %r..." % (len(b), b[:12])
    return repr(b)


class Informational(Case):
    informational = True


class FailFast(Case):
    """6.4.x: the connection must be failed as soon as the byte that makes
    the text invalid arrives (OK), or at the latest at the message's end
    (NON-STRICT)."""

    def __init__(self, cid, desc, parts, one_frame):
        # parts: the three pieces of the text. one_frame: one frame that
        # announces the whole payload, its bytes sent in three chops (the
        # mask runs on across them); else three fragments.
        self.parts = parts
        self.one_frame = one_frame
        Case.__init__(self, cid, desc, [], ok=[timeout("A")], non_strict=[timeout("A"), timeout("B")],
                      close=INVALID_PAYLOAD)

    def on_open(self, peer):
        if self.one_frame:
            total = b"".join(self.parts)
            data = wsproto.frame_bytes(1, total, True, 0, mask=peer.mask)
            head = len(data) - len(total)
            chunks = []
            at = head
            for i, p in enumerate(self.parts):
                start = 0 if i == 0 else at
                chunks.append(data[start:at + len(p)])
                at += len(p)
        else:
            chunks = [wsproto.frame_bytes(1 if i == 0 else 0, p, i == len(self.parts) - 1, 0, peer.mask)
                      for i, p in enumerate(self.parts)]
        peer.send_raw(chunks[0])
        for tag, chunk in (("A", chunks[1]), ("B", chunks[2])):
            peer.wait(1.0)
            if peer.state != wsproto.OPEN:
                return
            with peer.cond:
                peer.events.append(timeout(tag))
            peer.send_raw(chunk)
        peer.after(1.0 * wsproto.SLACK, peer.kill)


class Echo(Case):
    """9.x and 10.1.1: one big message (or many), echoed byte for byte."""

    def __init__(self, cid, desc, send, expect, binary, wait, count=1):
        Case.__init__(self, cid, desc, [], limit=wait + 5)
        self.send = send          # fn(peer): sends one message
        self.expect = expect      # the payload expected back
        self.binary = binary
        self.count = count
        self.sent = 0

    def on_open(self, peer):
        self.behavior = FAILED
        self.result = "no echo within %d s" % (self.limit - 5)
        peer.after(self.limit - 5, lambda: peer.close(1000))
        self.sent = 1
        self.send(peer)

    def on_message(self, peer, data, binary):
        if binary != self.binary or data != self.expect:
            self.behavior = FAILED
            self.result = "echo %s %s differs from the %s %d bytes sent" % (
                "binary" if binary else "text", short(data), "binary" if self.binary else "text", len(self.expect))
            peer.close(1000)
        elif self.sent < self.count:
            self.sent += 1
            self.send(peer)
        else:
            self.behavior = OK
            self.result = "%d echo%s of %d bytes" % (self.count, "es" if self.count > 1 else "", len(data))
            peer.close(1000)

    on_ping = on_pong = lambda self, peer, data: None


# ---------------------------------------------------------------------------
# Group 6: the UTF-8 sequences (after Markus Kuhn's UTF-8-test.txt, in the
# order and grouping of Autobahn's 6.5-6.23)
# ---------------------------------------------------------------------------

KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"  # "κόσμε"


def utf8_sequences():
    groups = []
    groups.append(("Some valid UTF-8 sequences", [
        b"hello\x24world", b"hello\xc2\xa2world", b"hello\xe2\x82\xacworld", b"hello\xf0\xa4\xad\xa2world", KOSME]))
    groups.append(("All prefixes of a valid UTF-8 string that contains multi-byte code points",
                   [KOSME[:i] for i in range(1, len(KOSME) + 1)]))
    groups.append(("First possible sequence of a certain length", [b"\x00", b"\xc2\x80", b"\xe0\xa0\x80",
                                                                   b"\xf0\x90\x80\x80"]))
    groups.append(("First possible sequence length 5/6 (invalid codepoints)", [b"\xf8\x88\x80\x80\x80",
                                                                               b"\xfc\x84\x80\x80\x80\x80"]))
    groups.append(("Last possible sequence of a certain length", [b"\x7f", b"\xdf\xbf", b"\xef\xbf\xbf",
                                                                  b"\xf4\x8f\xbf\xbf"]))
    groups.append(("Last possible sequence length 4/5/6 (invalid codepoints)", [
        b"\xf7\xbf\xbf\xbf", b"\xfb\xbf\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf\xbf"]))
    groups.append(("Other boundary conditions", [b"\xed\x9f\xbf", b"\xee\x80\x80", b"\xef\xbf\xbd",
                                                 b"\xf4\x8f\xbf\xbf", b"\xf4\x90\x80\x80"]))
    groups.append(("Unexpected continuation bytes", [
        b"\x80", b"\xbf", b"\x80\xbf", b"\x80\xbf\x80", b"\x80\xbf\x80\xbf", b"\x80\xbf\x80\xbf\x80",
        b"\x80\xbf\x80\xbf\x80\xbf", bytes(range(0x80, 0xbf))]))
    groups.append(("Lonely start characters", [
        b"".join(bytes([c, 0x20]) for c in range(lo, hi))
        for lo, hi in ((0xc0, 0xdf), (0xe0, 0xef), (0xf0, 0xf7), (0xf8, 0xfb), (0xfc, 0xfd))]))
    missing = [b"\xc0", b"\xe0\x80", b"\xf0\x80\x80", b"\xf8\x80\x80\x80", b"\xfc\x80\x80\x80\x80",
               b"\xdf", b"\xef\xbf", b"\xf7\xbf\xbf", b"\xfb\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf"]
    groups.append(("Sequences with last continuation byte missing", missing))
    groups.append(("Concatenation of incomplete sequences", [b"".join(missing)]))
    groups.append(("Impossible bytes", [b"\xfe", b"\xff", b"\xfe\xfe\xff\xff"]))
    groups.append(("Examples of an overlong ASCII character", [
        b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf", b"\xf8\x80\x80\x80\xaf", b"\xfc\x80\x80\x80\x80\xaf"]))
    groups.append(("Maximum overlong sequences", [
        b"\xc1\xbf", b"\xe0\x9f\xbf", b"\xf0\x8f\xbf\xbf", b"\xf8\x87\xbf\xbf\xbf", b"\xfc\x83\xbf\xbf\xbf\xbf"]))
    groups.append(("Overlong representation of the NUL character", [
        b"\xc0\x80", b"\xe0\x80\x80", b"\xf0\x80\x80\x80", b"\xf8\x80\x80\x80\x80", b"\xfc\x80\x80\x80\x80\x80"]))
    groups.append(("Single UTF-16 surrogates", [
        b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf", b"\xed\xb0\x80", b"\xed\xbe\x80",
        b"\xed\xbf\xbf"]))
    groups.append(("Paired UTF-16 surrogates", [
        a + b for a in (b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf")
        for b in (b"\xed\xb0\x80", b"\xed\xbf\xbf")]))
    nonchars = [b"\xef\xbf\xbe", b"\xef\xbf\xbf"]
    for z1 in (0xf0, 0xf1, 0xf2, 0xf3, 0xf4):
        for z2 in (0x8f, 0x9f, 0xaf, 0xbf):
            if z1 == 0xf4 and z2 != 0x8f:
                continue  # above U+10FFFF
            for z3 in (0xbe, 0xbf):
                s = bytes([z1, z2, 0xbf, z3])
                if s not in (b"\xf0\x8f\xbf\xbe", b"\xf0\x8f\xbf\xbf"):  # overlong
                    nonchars.append(s)
    groups.append(("Non-character code points (valid UTF-8)", nonchars))
    groups.append(("Unicode specials (i.e. replacement char)", [
        b"\xef\xbf\xb9", b"\xef\xbf\xba", b"\xef\xbf\xbb", b"\xef\xbf\xbc", b"\xef\xbf\xbd", b"\xef\xbf\xbe",
        b"\xef\xbf\xbf"]))
    return groups


# ---------------------------------------------------------------------------
# Groups 12 and 13: payloads and permessage-deflate parameters
# ---------------------------------------------------------------------------

_testdata = {}


def testdata(name):
    """Deterministic stand-ins for Autobahn's 12.x files, each about 256 KiB:
    JSON and HTML text (sent as text), a German play, a 512x512 grey bitmap
    and a PDF-like mix of text and incompressible streams (sent as binary)."""
    if name in _testdata:
        return _testdata[name]
    rnd = random.Random(name)
    size = 256 * 1024
    words = ("Faust", "Mephistopheles", "Gretchen", "Wagner", "Geist", "Himmel", "Erde", "Nacht", "Seele",
             "Wissenschaft", "Teufel", "Herz", "Liebe", "Zeit", "müssen", "größer", "über", "schön", "Straße",
             "und", "der", "die", "das", "ich", "nicht", "mit", "ein", "zu", "so", "wie", "was", "auch")
    out = bytearray()
    if name == "json_data1":
        out += b"["
        while len(out) < size:
            rec = '{"id": %d, "name": "%s %s", "score": %.3f, "tags": ["%s", "%s"], "active": %s, ' \
                  '"note": "Grüße aus München – %d"},\n' % (
                      rnd.randrange(10 ** 6), rnd.choice(words), rnd.choice(words), rnd.random() * 100,
                      rnd.choice(words), rnd.choice(words), rnd.choice(["true", "false"]), rnd.randrange(999))
            out += rec.encode()
        out += b'{"end": true}]'
    elif name == "html_data1":
        out += b"<!DOCTYPE html><html><head><title>data</title></head><body>\n"
        while len(out) < size:
            tag = rnd.choice(("p", "div", "li", "span", "td"))
            text = " ".join(rnd.choice(words) for _ in range(rnd.randrange(3, 15)))
            out += ('<%s class="c%d" id="e%d">%s</%s>\n' % (tag, rnd.randrange(20), rnd.randrange(10 ** 5),
                                                           text, tag)).encode()
        out += b"</body></html>\n"
    elif name == "gutenberg_faust":
        while len(out) < size:
            speaker = rnd.choice(words[:5]).upper()
            line = " ".join(rnd.choice(words) for _ in range(rnd.randrange(4, 12)))
            out += ("%s:\n%s,\n%s!\n\n" % (speaker, line.capitalize(), rnd.choice(words))).encode()
    elif name == "lena512":
        out += b"BM" + struct.pack("<IHHI", 54 + 1024 + 512 * 512, 0, 0, 54 + 1024)
        out += struct.pack("<IiiHHIIiiII", 40, 512, 512, 1, 8, 0, 512 * 512, 2835, 2835, 256, 0)
        out += b"".join(bytes([i, i, i, 0]) for i in range(256))
        for y in range(512):
            row = bytes((((x * y) >> 8) + (x ^ y) // 4 + rnd.randrange(8)) & 255 for x in range(512))
            out += row
    elif name == "ooms":
        out += b"%PDF-1.4\n"
        n = 1
        while len(out) < size:
            if rnd.random() < 0.5:
                stream = rnd.randbytes(rnd.randrange(500, 3000))
            else:
                stream = " ".join(rnd.choice(words) for _ in range(200)).encode("latin-1", "replace")
            out += b"%d 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n" % (n, len(stream))
            out += stream + b"\nendstream\nendobj\n"
            n += 1
        out += b"%%EOF\n"
    else:
        raise KeyError(name)
    data = bytes(out)
    if name in ("json_data1", "html_data1"):
        data.decode("utf-8")
    _testdata[name] = data
    return data


TESTDATA = [  # (name, description, binary), in Autobahn's order of 12.1-12.5
    ("json_data1", "JSON text", False),
    ("lena512", "a 512x512 grey bitmap", True),
    ("gutenberg_faust", "German verse", True),
    ("html_data1", "HTML text", False),
    ("ooms", "a PDF-like file", True),
]

MSG_SIZES = [  # (payload size, messages, seconds, auto-fragment size)
    (16, 1000, 60, 0), (64, 1000, 60, 0), (256, 1000, 120, 0), (1024, 1000, 240, 0), (4096, 1000, 480, 0),
    (8192, 1000, 480, 0), (16384, 1000, 480, 0), (32768, 1000, 480, 0), (65536, 1000, 480, 0),
    (131072, 1000, 480, 0), (8192, 1000, 480, 256), (16384, 1000, 480, 256), (32768, 1000, 480, 256),
    (65536, 1000, 480, 256), (131072, 1000, 480, 256), (131072, 1000, 480, 1024), (131072, 1000, 480, 4096),
    (131072, 1000, 480, 32768),
]


def accept_as_offered(offer):
    """The server takes the client's offer as it stands."""
    return DeflateParams(server_nct=offer.request_nct, server_bits=offer.request_bits or None)


def accepter(nct, bits):
    """A server's choice (Autobahn's accept1-6): the first offer that allows
    asking for client_no_context_takeover (always allowed, RFC 7692
    7.1.1.2) and client_max_window_bits=bits (only if offered, 7.1.2.2)."""
    def choose(offers):
        for o in offers:
            if bits and not o.client_bits:
                continue
            p = accept_as_offered(o)
            p.client_nct = nct
            if bits:
                p.client_bits = bits
            return p
        return None
    return choose


def accept_chain(offers):
    """accept7: (nct, 9), else (nct, -), else as offered."""
    for choose in (accepter(True, 9), accepter(True, 0), accepter(False, 0)):
        p = choose(offers)
        if p:
            return p
    return None


DEFLATE_PARAMS = [  # 13.1-13.7: (the client's offers, the server's choice, text)
    ([Offer()], accepter(False, 0), "default offer / accepted as offered"),
    ([Offer(request_nct=True)], accepter(True, 0), "server_no_context_takeover / client_no_context_takeover"),
    ([Offer(request_bits=9)], accepter(False, 9), "server_max_window_bits=9 / client_max_window_bits=9"),
    ([Offer(request_bits=15)], accepter(False, 15), "server_max_window_bits=15 / client_max_window_bits=15"),
    ([Offer(request_nct=True, request_bits=9)], accepter(True, 9), "both no_context_takeover, both windows 9"),
    ([Offer(request_nct=True, request_bits=15)], accepter(True, 15), "both no_context_takeover, both windows 15"),
    ([Offer(request_nct=True, request_bits=9), Offer(request_nct=True), Offer()], accept_chain,
     "three offers / the first that fits (nct+9, nct, as offered)"),
]


class Deflate(Case):
    """12.x/13.x: count messages of size bytes, compressed, echoed."""

    def __init__(self, cid, desc, data_name, binary, size, count, wait, frag, offers, choose):
        Case.__init__(self, cid, desc, [], limit=wait + 5)
        self.data_name = data_name
        self.binary = binary
        self.size = size
        self.count = count
        self.frag = frag
        self._offers = offers
        self._choose = choose
        self.ptr = 0
        self.sent = 0
        self.deflate = True

    def offers(self):
        return self._offers

    def choose(self, offers):
        return self._choose(offers)

    def next_payload(self):
        data = testdata(self.data_name)
        if not self.binary:
            text = data.decode("utf-8")  # text is cut on code points, as Autobahn does
            seq = text
        else:
            seq = data
        a = self.ptr
        b = (a + self.size) % len(seq)
        piece = seq[a:b] if b > a else seq[a:] + seq[:b]
        self.ptr = b
        return piece.encode("utf-8") if not self.binary else piece

    def on_open(self, peer):
        if peer.deflate is None:
            self.behavior = UNIMPLEMENTED
            self.result = "permessage-deflate was not agreed (no Sec-WebSocket-Extensions in the 101)" \
                if peer.role == "client" else "the client did not offer permessage-deflate"
            peer.close(1000)
            return
        self.behavior = FAILED
        self.result = "not done within %d s" % (self.limit - 5)
        peer.after(self.limit - 5, lambda: peer.close(1000))
        self.send_one(peer)

    def send_one(self, peer):
        self.payload = self.next_payload()
        self.sent += 1
        peer.send_message(self.payload, self.binary, self.frag or None)

    def on_message(self, peer, data, binary):
        if binary != self.binary or data != self.payload:
            self.behavior = FAILED
            self.result = "echo %d differs: %s %s (sha1 %s), sent %s %d bytes (sha1 %s)" % (
                self.sent, "binary" if binary else "text", short(data), hashlib.sha1(data).hexdigest()[:12],
                "binary" if self.binary else "text", len(self.payload),
                hashlib.sha1(self.payload).hexdigest()[:12])
            peer.close(1000)
        elif self.sent < self.count:
            self.send_one(peer)
        else:
            d = peer.deflate
            self.behavior = OK
            def ratio(wire, raw):
                return "%.3f" % (wire / raw) if raw else "-"
            self.result = "%d echoes, %s, compressed/raw out %s in %s" % (
                self.count, d.params, ratio(d.wire_out, d.raw_out), ratio(d.wire_in, d.raw_in))
            peer.close(1000)

    on_ping = on_pong = lambda self, peer, data: None


# ---------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------

def build_cases(count=1000):
    """Every case, in Autobahn's order. count: the messages of 9.7/9.8/12/13
    (1000 in Autobahn)."""
    cases = []

    def add(c):
        cases.append(c)

    # 1 Framing
    for sub, op, fill, binary, kind in ((1, 1, b"*", False, "text"), (2, 2, b"\xfe", True, "binary")):
        for i, n in enumerate((0, 125, 126, 127, 128, 65535, 65536, 65536), 1):
            chop = 997 if i == 8 else None
            add(Case("1.%d.%d" % (sub, i), "%s message of %d bytes%s" % (kind, n, " in 997-byte chops" if chop else ""),
                     [F(op, fill * n, chop=chop), KILL(10 if n > 128 else 1)], ok=[msg(fill * n, binary)]))

    # 2 Pings/Pongs
    for i, (p, desc) in enumerate(((b"", "ping without payload"), (HELLO, "ping with a text payload"),
                                   (b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff", "ping with a binary payload"),
                                   (b"\xfe" * 125, "ping with 125 bytes")), 1):
        add(Case("2.%d" % i, desc, [F(9, p), CLOSE_AFTER(1)], ok=[pong(p)]))
    add(Case("2.5", "ping with 126 bytes: fail (1002)", [F(9, b"\xfe" * 126), KILL(1)], close=PROTOCOL_ERROR))
    add(Case("2.6", "ping with 125 bytes in 1-byte chops", [F(9, b"\xfe" * 125, chop=1), CLOSE_AFTER(2)],
             ok=[pong(b"\xfe" * 125)]))
    add(Case("2.7", "unsolicited pong without payload, then close", [F(10), CLOSE(1000), CLOSE_AFTER(1)]))
    add(Case("2.8", "unsolicited pong with payload, then close",
             [F(10, b"unsolicited pong payload"), CLOSE(1000), CLOSE_AFTER(1)]))
    add(Case("2.9", "unsolicited pong, then a ping",
             [F(10, b"unsolicited pong payload"), F(9, b"ping payload"), CLOSE_AFTER(1)], ok=[pong(b"ping payload")]))
    for cid, chop in (("2.10", None), ("2.11", 1)):
        add(Case(cid, "10 pings with payload" + (" in 1-byte chops" if chop else ""),
                 [F(9, b"payload-%d" % i, chop=chop) for i in range(10)] + [CLOSE_AFTER(3)],
                 ok=[pong(b"payload-%d" % i) for i in range(10)]))

    # 3 Reserved bits
    add(Case("3.1", "text with RSV = 1: fail", [F(1, HELLO, rsv=1), KILL(1)], close=PROTOCOL_ERROR))
    for cid, rsv, sync, chop in (("3.2", 2, False, None), ("3.3", 3, True, None), ("3.4", 4, False, 1)):
        add(Case(cid, "text, text with RSV = %d, ping: echo, then fail" % rsv,
                 [F(1, HELLO, sync=sync, chop=chop), F(1, HELLO, rsv=rsv, sync=sync, chop=chop),
                  F(9, sync=sync, chop=chop), KILL(1)],
                 ok=[msg(HELLO)], non_strict=[], close=PROTOCOL_ERROR))
    add(Case("3.5", "binary with RSV = 5: fail", [F(2, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff", rsv=5), KILL(1)],
             close=PROTOCOL_ERROR))
    # Autobahn's 3.6 says "Ping" but sends a binary frame: ported as sent.
    add(Case("3.6", "binary with RSV = 6: fail", [F(2, HELLO, rsv=6), KILL(1)], close=PROTOCOL_ERROR))
    add(Case("3.7", "close with RSV = 7: fail", [F(8, rsv=7), KILL(1)], close=PROTOCOL_ERROR))

    # 4 Opcodes
    for grp, ops in ((1, (3, 4, 5, 6, 7)), (2, (11, 12, 13, 14, 15))):
        a, b, c, d, e = ops
        add(Case("4.%d.1" % grp, "reserved opcode %d: fail" % a, [F(a), KILL(1)], close=PROTOCOL_ERROR))
        add(Case("4.%d.2" % grp, "reserved opcode %d with payload: fail" % b,
                 [F(b, b"reserved opcode payload"), KILL(1)], close=PROTOCOL_ERROR))
        add(Case("4.%d.3" % grp, "text, reserved opcode %d, ping: echo, then fail" % c,
                 [F(1, HELLO), F(c), F(9), KILL(1)], ok=[msg(HELLO)], non_strict=[], close=PROTOCOL_ERROR))
        add(Case("4.%d.4" % grp, "text, reserved opcode %d with payload, ping" % d,
                 [F(1, HELLO), F(d, HELLO), F(9), KILL(1)], ok=[msg(HELLO)], non_strict=[], close=PROTOCOL_ERROR))
        add(Case("4.%d.5" % grp, "as 4.%d.4 with opcode %d, in 1-byte chops" % (grp, e),
                 [F(1, HELLO, chop=1), F(e, HELLO, chop=1), F(9, chop=1), KILL(1)], ok=[msg(HELLO)], non_strict=[],
                 close=PROTOCOL_ERROR))

    # 5 Fragmentation
    f1, f2 = b"fragment1", b"fragment2"
    add(Case("5.1", "fragmented ping: fail", [F(9, f1, fin=False), F(0, f2), KILL(1)], close=PROTOCOL_ERROR))
    add(Case("5.2", "fragmented pong: fail", [F(10, f1, fin=False), F(0, f2), KILL(1)], close=PROTOCOL_ERROR))
    for cid, sync, chop in (("5.3", False, None), ("5.4", True, None), ("5.5", False, 1)):
        add(Case(cid, "text in 2 fragments", [F(1, f1, fin=False, sync=sync, chop=chop),
                                              F(0, f2, sync=sync, chop=chop), CLOSE_AFTER(1)], ok=[msg(f1 + f2)]))
    for cid, sync, chop in (("5.6", False, None), ("5.7", True, None), ("5.8", False, 1)):
        add(Case(cid, "text in 2 fragments, a ping between", [
            F(1, f1, fin=False, sync=sync, chop=chop), F(9, b"ping payload", sync=sync, chop=chop),
            F(0, f2, sync=sync, chop=chop), CLOSE_AFTER(1)], ok=[pong(b"ping payload"), msg(f1 + f2)]))
    for cid, fin, sync, chop in (("5.9", True, False, None), ("5.10", True, True, None), ("5.11", True, False, 1),
                                 ("5.12", False, False, None), ("5.13", False, True, None),
                                 ("5.14", False, False, 1)):
        add(Case(cid, "continuation (fin=%s) without a message, then text: fail" % fin, [
            F(0, b"non-continuation payload", fin=fin, sync=sync, chop=chop),
            F(1, HELLO, sync=sync, chop=chop), KILL(1)], close=PROTOCOL_ERROR))
    add(Case("5.15", "a message in 2 fragments, then a continuation and a text frame: echo, then fail", [
        F(1, f1, fin=False), F(0, f2), F(0, b"fragment3", fin=False), F(1, b"fragment4"), KILL(1)],
        ok=[msg(f1 + f2)], non_strict=[], close=PROTOCOL_ERROR))
    add(Case("5.16", "continuation, then text and continuation fragments, twice: fail",
             [F(0, f1, fin=False), F(1, f2, fin=False), F(0, b"fragment3")] * 2 + [KILL(1)], close=PROTOCOL_ERROR))
    add(Case("5.17", "as 5.16, the first continuation with FIN: fail",
             [F(0, f1), F(1, f2, fin=False), F(0, b"fragment3")] * 2 + [KILL(1)], close=PROTOCOL_ERROR))
    add(Case("5.18", "text fragment, then a new text frame: fail", [F(1, f1, fin=False), F(1, f2), KILL(1)],
             close=PROTOCOL_ERROR))
    frs = [b"fragment%d" % i for i in range(1, 6)]
    for cid, sync in (("5.19", False), ("5.20", True)):
        add(Case(cid, "text in 5 fragments with 2 pings and a 1 s pause", [
            F(1, frs[0], fin=False, sync=sync), F(0, frs[1], fin=False, sync=sync), F(9, b"pongme 1!", sync=sync),
            WAIT(1), F(0, frs[2], fin=False, sync=sync), F(0, frs[3], fin=False, sync=sync),
            F(9, b"pongme 2!", sync=sync), F(0, frs[4], sync=sync), CLOSE_AFTER(1)],
            ok=[pong(b"pongme 1!"), pong(b"pongme 2!"), msg(b"".join(frs))]))

    # 6 UTF-8 handling
    add(Case("6.1.1", "text of length 0", [F(1, b""), CLOSE_AFTER(1)], ok=[msg(b"")]))
    add(Case("6.1.2", "text in 3 empty fragments", [F(1, b"", fin=False), F(0, b"", fin=False), F(0, b""),
                                                    CLOSE_AFTER(1)], ok=[msg(b"")]))
    mid = b"middle frame payload"
    add(Case("6.1.3", "text in 3 fragments, only the middle one not empty",
             [F(1, b"", fin=False), F(0, mid, fin=False), F(0, b""), CLOSE_AFTER(1)], ok=[msg(mid)]))
    hello = "Hello-µ@ßöäüàá-UTF-8!!".encode()
    add(Case("6.2.1", "valid UTF-8 text in one frame", [MSG(hello), CLOSE_AFTER(1)], ok=[msg(hello)]))
    p1, p2 = "Hello-µ@ßöä".encode(), "üàá-UTF-8!!".encode()
    add(Case("6.2.2", "valid UTF-8 text in 2 fragments split on a code point",
             [F(1, p1, fin=False), F(0, p2), CLOSE_AFTER(1)], ok=[msg(p1 + p2)]))
    add(Case("6.2.3", "valid UTF-8 text in 1-byte fragments", [MSG(hello, frag=1), CLOSE_AFTER(1)], ok=[msg(hello)]))
    add(Case("6.2.4", "valid UTF-8 text (κόσμε) in 1-byte fragments", [MSG(KOSME, frag=1), CLOSE_AFTER(1)],
             ok=[msg(KOSME)]))
    bad = KOSME + b"\xed\xa0\x80" + b"edited"
    add(Case("6.3.1", "invalid UTF-8 text: fail (1007)", [MSG(bad), KILL(1)], close=INVALID_PAYLOAD))
    add(Case("6.3.2", "invalid UTF-8 text in 1-byte fragments: fail (1007)", [MSG(bad, frag=1), KILL(1)],
             close=INVALID_PAYLOAD))
    bad = KOSME + b"\xf4\x90\x80\x80" + b"edited"
    add(FailFast("6.4.1", "3 fragments, the 2nd makes the text invalid: fail fast",
                 [KOSME, b"\xf4\x90\x80\x80", b"edited"], one_frame=False))
    add(FailFast("6.4.2", "as 6.4.1, the 2nd fragment is the one invalid byte",
                 [bad[:12], bad[12:13], bad[13:]], one_frame=False))
    add(FailFast("6.4.3", "one frame in 3 chops, the 2nd makes the text invalid: fail fast",
                 [KOSME, b"\xf4\x90\x80\x80", b"edited"], one_frame=True))
    add(FailFast("6.4.4", "as 6.4.3, the 2nd chop is the one invalid byte",
                 [bad[:12], bad[12:13], bad[13:]], one_frame=True))
    for i, (title, seqs) in enumerate(utf8_sequences(), 5):
        for j, s in enumerate(seqs, 1):
            valid = wsproto.utf8_valid(s)
            if valid:
                add(Case("6.%d.%d" % (i, j), "%s: valid %s" % (title, s.hex()), [MSG(s), KILL(0.5)], ok=[msg(s)]))
            else:
                add(Case("6.%d.%d" % (i, j), "%s: invalid %s, fail (1007)" % (title, s.hex()), [MSG(s), KILL(0.5)],
                         close=INVALID_PAYLOAD))

    # 7 Close handling
    hw = b"Hello World!"
    add(Case("7.1.1", "a message, then the fuzzer closes", [F(1, hw), KILL(1)], ok=[msg(hw)]))
    for cid, desc, after in (("7.1.2", "two close frames", F(8)), ("7.1.3", "a ping after the close", F(9)),
                             ("7.1.4", "a text message after the close", F(1, hw))):
        add(Case(cid, desc + ": ignored", [CLOSE(1000), after, KILL(1)], suppress_close=True))
    add(Case("7.1.5", "a fragment, the close, the last fragment: ignored",
             [F(1, f1, fin=False), CLOSE(1000), F(0, f2), KILL(1)], suppress_close=True))
    add(Informational("7.1.6", "256 KiB message, a message, close, ping: order is the implementation's", [
        F(1, b"BAsd7&jh23", length=256 * 1024), F(1, hw), CLOSE(1000), F(9), KILL(1)],
        ok=[msg(hw)], non_strict=[], suppress_close=True))
    add(Case("7.3.1", "close with an empty payload", [CLOSE(), KILL(1)], suppress_close=True))
    add(Case("7.3.2", "close with a 1-byte payload: 1002 or drop", [CLOSE(None, b"a"), KILL(1)],
             close={"by_me": True, "codes": (1002,), "clean": False}, suppress_close=True))
    add(Case("7.3.3", "close with a code", [CLOSE(1000), KILL(1)], suppress_close=True))
    add(Case("7.3.4", "close with a code and a reason", [CLOSE(1000, hw), KILL(1)], suppress_close=True))
    add(Case("7.3.5", "close with a 123-byte reason", [CLOSE(1000, b"*" * 123), KILL(1)], suppress_close=True))
    add(Case("7.3.6", "close with a 124-byte reason (126-byte payload): 1002 or drop",
             [CLOSE(1000, b"*" * 124), KILL(1)], close={"by_me": True, "codes": (1002,), "clean": False},
             suppress_close=True))
    add(Case("7.5.1", "close reason not UTF-8: 1002/1007 or drop", [CLOSE(1000, KOSME + b"\xed\xa0\x80edited"),
                                                                     KILL(1)],
             close={"by_me": True, "codes": (1002, 1007), "clean": False}, suppress_close=True))
    for i, code in enumerate((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999), 1):
        add(Case("7.7.%d" % i, "close with the valid code %d" % code, [CLOSE(code), KILL(1)],
                 close={"by_me": True, "codes": (1000, code), "clean": True}, suppress_close=True))
    for i, code in enumerate((0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999), 1):
        add(Case("7.9.%d" % i, "close with the invalid code %d: 1002 or drop" % code, [CLOSE(code), KILL(1)],
                 close={"by_me": True, "codes": (1002,), "clean": False}, suppress_close=True))
    for i, code in enumerate((5000, 65535), 1):
        add(Informational("7.13.%d" % i, "close with the code %d (outside every range)" % code,
                          [CLOSE(code), KILL(1)], close={"by_me": True, "codes": (1000, code, 1002), "clean": False},
                          suppress_close=True))

    # 9 Limits/performance
    def big(op, fill, n, frag=None, chop=None):
        payload = (fill * (n // len(fill) + 1))[:n]

        def send(peer):
            if frag:
                peer.send_message(payload, op == 2, frag)
            else:
                peer.send_frame(op, payload, chop=chop)
        return send, payload

    sizes = (64 * 1024, 256 * 1024, 1 << 20, 4 << 20, 8 << 20, 16 << 20)
    for sub, op, fill, waits in ((1, 1, b"BAsd7&jh23", (10, 10, 100, 100, 100, 100)),
                                 (2, 2, b"\x00\xfe\x23\xfa\xf0", (10, 10, 10, 10, 100, 100))):
        for i, (n, w) in enumerate(zip(sizes, waits), 1):
            send, payload = big(op, fill, n)
            add(Echo("9.%d.%d" % (sub, i), "%s message of %d bytes" % ("text" if op == 1 else "binary", n),
                     send, payload, op == 2, w))
    frags = (64, 256, 1024, 4096, 16384, 65536, 256 * 1024, 1 << 20, 4 << 20)
    for sub, op in ((3, 1), (4, 2)):
        for i, fs in enumerate(frags, 1):
            fill = b"\xfe" if (op == 2 and i == 1) else b"*"  # as Autobahn's 9.4.x
            send, payload = big(op, fill, 4 << 20, frag=fs)
            add(Echo("9.%d.%d" % (sub, i), "%s message of 4 MiB in %d-byte fragments" % (
                "text" if op == 1 else "binary", fs), send, payload, op == 2, 100))
    for sub, op, fill in ((5, 1, b"BAsd7&jh23"), (6, 2, b"\x00\xfe\x23\xfa\xf0")):
        for i, chop in enumerate((64, 128, 256, 512, 1024, 2048), 1):
            send, payload = big(op, fill, 1 << 20, chop=chop)
            add(Echo("9.%d.%d" % (sub, i), "%s message of 1 MiB in %d-byte chops" % (
                "text" if op == 1 else "binary", chop), send, payload, op == 2, 1000))
    for sub, op, fill in ((7, 1, b"*"), (8, 2, b"\xfe")):
        for i, (n, w) in enumerate(((0, 60), (16, 60), (64, 60), (256, 120), (1024, 240), (4096, 480)), 1):
            payload = fill * n
            add(Echo("9.%d.%d" % (sub, i), "%d %s messages of %d bytes, one at a time" % (
                count, "text" if op == 1 else "binary", n),
                (lambda op, payload: lambda peer: peer.send_frame(op, payload))(op, payload), payload, op == 2, w,
                count=count))

    # 10 Misc
    star = b"*" * 65536
    add(Echo("10.1.1", "text of 65536 bytes in 1300-byte frames (auto-fragmentation)",
             lambda peer: peer.send_message(star, False, 1300), star, False, 10))

    # 12 permessage-deflate, payloads
    for j, (name, what, binary) in enumerate(TESTDATA, 1):
        for i, (size, _, wait, frag) in enumerate(MSG_SIZES, 1):
            add(Deflate("12.%d.%d" % (j, i), "%d compressed %s messages of %d bytes of %s%s" % (
                count, "binary" if binary else "text", size, what, ", in %d-byte frames" % frag if frag else ""),
                name, binary, size, count, wait, frag, [Offer()], accepter(False, 0)))

    # 13 permessage-deflate, parameters (JSON text)
    for j, (offers, choose, what) in enumerate(DEFLATE_PARAMS, 1):
        for i, (size, _, wait, frag) in enumerate(MSG_SIZES, 1):
            add(Deflate("13.%d.%d" % (j, i), "%d compressed messages of %d bytes, %s%s" % (
                count, size, what, ", in %d-byte frames" % frag if frag else ""),
                "json_data1", False, size, count, wait, frag, offers, choose))
    return cases


def case_key(cid):
    return tuple(int(x) for x in cid.split("."))


def select(cases, include=None, exclude=None):
    """Cases whose id matches one of the comma-separated patterns of
    include ("1.*", "9.1.1"; a prefix such as "7" or "6.4" means every case
    under it) and none of exclude."""
    def pats(s):
        return [p.strip() for p in (s or "").split(",") if p.strip()]

    def match(cid, p):
        return fnmatch.fnmatchcase(cid, p) or cid == p or cid.startswith(p + ".")

    inc, exc = pats(include), pats(exclude)
    return [c for c in cases
            if (not inc or any(match(c.id, p) for p in inc)) and not any(match(c.id, p) for p in exc)]


def group_of(cid):
    return cid.split(".")[0]


def summarize(results, side, out):
    """Per-group counts and the check against EXPECTED[side]; prints to out
    (a function of one line) and returns True when the results are what
    EXPECTED says."""
    expected = EXPECTED[side]
    groups = {}
    for cid, status, _ in results:
        g = groups.setdefault(group_of(cid), {})
        g[status] = g.get(status, 0) + 1
    for g in sorted(groups, key=int):
        counts = groups[g]
        total = sum(counts.values())
        passed = sum(counts.get(s, 0) for s in PASSING)
        out("group %s: %d/%d passed (%s)" % (g, passed, total, ", ".join(
            "%s %d" % (s, n) for s, n in sorted(counts.items()))))
    ok = True
    ran = {cid: status for cid, status, _ in results}
    for cid, status, detail in results:
        if status == FAILED and cid not in expected:
            out("unexpected failure: %s %s" % (cid, detail))
            ok = False
        elif cid in expected and status != FAILED:
            out("listed as failing but %s: %s (remove it from EXPECTED[%r])" % (status, cid, side))
            ok = False
    for cid in sorted(expected, key=case_key):
        if ran.get(cid) == FAILED:
            out("expected failure: %s (%s)" % (cid, expected[cid]))
    n_fail = sum(1 for _, s, _ in results if s == FAILED)
    n_pass = sum(1 for _, s, _ in results if s in PASSING)
    n_unimpl = sum(1 for _, s, _ in results if s == UNIMPLEMENTED)
    out("summary: %d cases, %d passed, %d failed (%d expected), %d unimplemented; %s" % (
        len(results), n_pass, n_fail, sum(1 for cid, s, _ in results if s == FAILED and cid in expected),
        n_unimpl, "as expected" if ok else "NOT as expected"))
    return ok


if __name__ == "__main__":
    # cases.py --expected server|client: the listed failures, "id reason"
    # per line; cases.py --list [patterns]: the case ids and descriptions.
    import sys
    if len(sys.argv) >= 3 and sys.argv[1] == "--expected":
        for cid in sorted(EXPECTED[sys.argv[2]], key=case_key):
            print(cid, EXPECTED[sys.argv[2]][cid])
    elif len(sys.argv) >= 2 and sys.argv[1] == "--list":
        for c in select(build_cases(), sys.argv[2] if len(sys.argv) > 2 else None):
            print(c.id, c.desc)
    else:
        print("usage: cases.py --expected server|client | --list [patterns]", file=sys.stderr)
        sys.exit(2)
