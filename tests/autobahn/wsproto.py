"""The WebSocket endpoint that plays the Autobahn cases (RFC 6455, RFC 7692).

Written for this repository (it is not Autobahn's code): one Peer wraps a
connected socket after the opening handshake, as the client (it masks what
it sends) or as the server. A reader thread parses and checks every frame
the peer under test sends, as strictly as the RFC: a broken rule is recorded
as a violation (the case fails) and the connection is failed with 1002 or
1007, as Autobahn's own endpoint does. Pings are answered, a close is
echoed, and the TCP connection is dropped by the server side after the
closing handshake (RFC 6455 7.1.1). Sending is done by the case, from the
main thread (or from the reader thread in a message handler).
"""
import base64
import hashlib
import os
import socket
import struct
import threading
import time
import zlib

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OPEN, CLOSING, CLOSED = "open", "closing", "closed"

# How long Autobahn's endpoint waits for the peer's close reply, and (as a
# client) for the server to drop TCP after the closing handshake. SLACK
# multiplies these and the cases' give-up timers (killAfter, closeAfter):
# more patience on a loaded machine, the same verdicts for a peer that
# acts at once (the runners' --slack).
SLACK = 1.0
CLOSE_HANDSHAKE_TIMEOUT = 1.0
SERVER_DROP_TIMEOUT = 1.0

MAX_MESSAGE = 64 * 1024 * 1024


def accept_key(key):
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def close_code_valid(code):
    """A close code a peer may send (RFC 6455 7.4.1/7.4.2, and 1012-1014 of
    the IANA registry)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def utf8_valid(data):
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def xor_mask(data, mask):
    """data XOR the repeated 4-byte mask (fast for large payloads)."""
    n = len(data)
    if n == 0:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def frame_bytes(opcode, payload=b"", fin=True, rsv=0, mask=True, length=None):
    """One frame; length (repeat payload up to length bytes) as Autobahn's
    payload_len. rsv: the three RSV bits as a number 0-7 (RSV1 = 4)."""
    if length is not None:
        if length and not payload:
            raise ValueError("length needs a payload to repeat")
        payload = (payload * (length // max(len(payload), 1) + 1))[:length]
    n = len(payload)
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 15)
    m = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, m | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + xor_mask(payload, key)


# ---------------------------------------------------------------------------
# permessage-deflate (RFC 7692)
# ---------------------------------------------------------------------------

def parse_extensions(value):
    """Sec-WebSocket-Extensions -> [(name, {param: value-or-True})] (RFC 6455
    9.1); raises ValueError on a malformed header or a repeated parameter."""
    out = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        parts = [p.strip() for p in item.split(";")]
        name = parts[0]
        if not name:
            raise ValueError("empty extension name in %r" % value)
        params = {}
        for p in parts[1:]:
            if not p:
                raise ValueError("empty extension parameter in %r" % value)
            k, eq, v = p.partition("=")
            k = k.strip()
            v = v.strip()
            if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
                v = v[1:-1]
            if k in params:
                raise ValueError("parameter %s repeated" % k)
            params[k] = v if eq else True
        out.append((name, params))
    return out


def window_bits(value, what):
    if value is True or not value.isdigit() or value.startswith("0") or not 8 <= int(value) <= 15:
        raise ValueError("%s must be an integer 8-15, not %r" % (what, value))
    return int(value)


class DeflateParams:
    """What was agreed: each side's context takeover and window size."""

    def __init__(self, server_nct=False, client_nct=False, server_bits=None, client_bits=None):
        self.server_nct = server_nct
        self.client_nct = client_nct
        self.server_bits = server_bits
        self.client_bits = client_bits

    def header(self):
        s = "permessage-deflate"
        if self.server_nct:
            s += "; server_no_context_takeover"
        if self.client_nct:
            s += "; client_no_context_takeover"
        if self.server_bits:
            s += "; server_max_window_bits=%d" % self.server_bits
        if self.client_bits:
            s += "; client_max_window_bits=%d" % self.client_bits
        return s

    def __repr__(self):
        return self.header()


class Offer:
    """A client's permessage-deflate offer (what Autobahn's
    PerMessageDeflateOffer sends): client_no_context_takeover and
    client_max_window_bits (no value) by default."""

    def __init__(self, request_nct=False, request_bits=0, client_nct=True, client_bits=True):
        self.request_nct = request_nct      # server_no_context_takeover
        self.request_bits = request_bits    # server_max_window_bits=N (0: none)
        self.client_nct = client_nct        # client_no_context_takeover (a hint)
        self.client_bits = client_bits      # client_max_window_bits: True or N

    def header(self):
        s = "permessage-deflate"
        if self.client_nct:
            s += "; client_no_context_takeover"
        if self.client_bits is True:
            s += "; client_max_window_bits"
        elif self.client_bits:
            s += "; client_max_window_bits=%d" % self.client_bits
        if self.request_nct:
            s += "; server_no_context_takeover"
        if self.request_bits:
            s += "; server_max_window_bits=%d" % self.request_bits
        return s

    @classmethod
    def parse(cls, params):
        """A received offer (server side); raises ValueError when invalid."""
        o = cls(client_nct=False, client_bits=None)
        for k, v in params.items():
            if k == "server_no_context_takeover" and v is True:
                o.request_nct = True
            elif k == "client_no_context_takeover" and v is True:
                o.client_nct = True
            elif k == "server_max_window_bits":
                o.request_bits = window_bits(v, k)
            elif k == "client_max_window_bits":
                o.client_bits = True if v is True else window_bits(v, k)
            else:
                raise ValueError("unknown or malformed parameter %s=%r" % (k, v))
        return o

    def agree(self, params):
        """The client's check of the server's answer to this offer (RFC 7692
        7.1): DeflateParams, or ValueError."""
        server_nct = client_nct = False
        server_bits = client_bits = None
        for k, v in params.items():
            if k == "server_no_context_takeover" and v is True:
                server_nct = True
            elif k == "client_no_context_takeover" and v is True:
                client_nct = True
            elif k == "server_max_window_bits":
                server_bits = window_bits(v, k)
            elif k == "client_max_window_bits":
                client_bits = window_bits(v, k)
            else:
                raise ValueError("unknown or malformed parameter %s=%r" % (k, v))
        if self.request_nct and not server_nct:
            raise ValueError("server_no_context_takeover was requested, the answer lacks it (7.1.1.1)")
        if self.request_bits:
            if server_bits is None:
                raise ValueError("server_max_window_bits was requested, the answer lacks it (7.1.2.1)")
            if server_bits > self.request_bits:
                raise ValueError("server_max_window_bits=%d is over the %d requested (7.1.2.1)"
                                 % (server_bits, self.request_bits))
        if client_bits is not None:
            if not self.client_bits:
                raise ValueError("client_max_window_bits in the answer was not offered (7.1.2.2)")
            if self.client_bits is not True and client_bits > self.client_bits:
                raise ValueError("client_max_window_bits=%d is over the %d offered" % (client_bits, self.client_bits))
        elif self.client_bits not in (None, True):
            client_bits = self.client_bits
        # The hint in the offer binds the client itself (7.1.1.2).
        return DeflateParams(server_nct, client_nct or self.client_nct, server_bits, client_bits)


class Deflater:
    """Compression state of one endpoint (role "client" or "server")."""

    def __init__(self, role, params):
        self.params = params
        me_client = role == "client"
        self.tx_nct = params.client_nct if me_client else params.server_nct
        self.rx_nct = params.server_nct if me_client else params.client_nct
        self.tx_bits = (params.client_bits if me_client else params.server_bits) or 15
        self.rx_bits = (params.server_bits if me_client else params.client_bits) or 15
        self.tx_bits = max(self.tx_bits, 9)  # zlib cannot deflate with an 8-bit window
        self.comp = None
        self.decomp = None
        self.raw_in = self.raw_out = self.wire_in = self.wire_out = 0

    def compress(self, data):
        if self.comp is None or self.tx_nct:
            self.comp = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -self.tx_bits)
        out = self.comp.compress(data) + self.comp.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(b"\x00\x00\xff\xff")
        out = out[:-4]
        self.raw_out += len(data)
        self.wire_out += len(out)
        return out

    def decompress(self, data, limit=MAX_MESSAGE):
        """Raises ValueError when the data breaks the agreed parameters
        (a window over the agreed size or a reference to an earlier message
        after no_context_takeover make zlib fail: a fresh inflater with the
        agreed window checks both)."""
        if self.decomp is None or self.rx_nct:
            self.decomp = zlib.decompressobj(-self.rx_bits)
        try:
            out = self.decomp.decompress(data + b"\x00\x00\xff\xff", limit + 1)
        except zlib.error as e:
            raise ValueError("inflate failed: %s (window %d, no_context_takeover %s)"
                             % (e, self.rx_bits, self.rx_nct))
        if len(out) > limit:
            raise ValueError("inflated message over %d bytes" % limit)
        self.wire_in += len(data)
        self.raw_in += len(out)
        return out


# ---------------------------------------------------------------------------
# The endpoint
# ---------------------------------------------------------------------------

class Peer:
    def __init__(self, sock, role, deflate=None, initial=b"", handler=None):
        self.sock = sock
        self.role = role
        self.mask = role == "client"
        self.deflate = Deflater(role, deflate) if deflate else None
        self.handler = handler  # the case: on_message / on_ping / on_pong
        self.cond = threading.Condition()
        self.send_lock = threading.Lock()
        self.state = OPEN
        self.events = []
        self.closed_by_me = False
        self.failed_by_me = False
        self.dropped_by_me = False
        self.killed = False
        self.close_sent = False
        self.close_received = False
        self.was_clean = False
        self.unclean_reason = None
        self.remote_code = None
        self.remote_reason = None
        self.local_code = None
        self.violation = None
        self.tcp_closed = False
        self.frames_in = 0
        self.last_mask = None
        self.timers = []  # (when, fn)
        self.started = time.time()
        self.buf = bytearray(initial)
        self.pos = 0
        self.message_op = None
        self.message_rsv1 = False
        self.message_parts = []
        self.message_len = 0
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.reader = threading.Thread(target=self._read_loop, daemon=True)
        self.reader.start()

    # -- sending ---------------------------------------------------------

    def send_raw(self, data, chop=None, sync=False):
        """Bytes to the peer; chop: in pieces of that size, each its own
        write; sync: a short pause after (the next write is a separate TCP
        segment). False once the connection is gone."""
        try:
            with self.send_lock:
                if self.tcp_closed and self.state == CLOSED:
                    return False
                if chop:
                    for i in range(0, len(data), chop):
                        self.sock.sendall(data[i:i + chop])
                        if chop <= 16:
                            time.sleep(0.0002)
                else:
                    self.sock.sendall(data)
            if sync:
                time.sleep(0.002)
            return True
        except OSError:
            return False

    def send_frame(self, opcode, payload=b"", fin=True, rsv=0, length=None, chop=None, sync=False):
        return self.send_raw(frame_bytes(opcode, payload, fin, rsv, self.mask, length), chop, sync)

    def send_message(self, payload, binary=False, fragment=None, sync=False):
        """A message as Autobahn's sendMessage: compressed when
        permessage-deflate was agreed, in frames of fragment bytes if given."""
        op = 2 if binary else 1
        rsv = 0
        if self.deflate:
            payload = self.deflate.compress(payload)
            rsv = 4
        if not fragment or len(payload) <= fragment:
            return self.send_frame(op, payload, rsv=rsv, sync=sync)
        parts = [payload[i:i + fragment] for i in range(0, len(payload), fragment)]
        data = b"".join(frame_bytes(op if i == 0 else 0, p, i == len(parts) - 1, rsv if i == 0 else 0, self.mask)
                        for i, p in enumerate(parts))
        return self.send_raw(data, sync=sync)

    def close(self, code=None, reason=b""):
        """Starts the closing handshake (Autobahn's sendClose/sendCloseFrame):
        code None sends the reason bytes alone (an empty close when none)."""
        with self.cond:
            if self.state != OPEN:
                return False
            self.state = CLOSING
            self.close_sent = True
            self.closed_by_me = True
            self.local_code = code
        payload = (struct.pack("!H", code) if code is not None else b"") + reason
        self.send_frame(8, payload)
        self.after(CLOSE_HANDSHAKE_TIMEOUT * SLACK, self._close_timeout)
        return True

    def _close_timeout(self):
        if self.state != CLOSED and not self.close_received:
            self.unclean_reason = "no close frame in answer to ours within %.0f s" % (CLOSE_HANDSHAKE_TIMEOUT * SLACK)
            self.killed = True
            self.drop()

    def fail(self, why, code=1002):
        """The peer broke a rule: record it, send a close, drop TCP."""
        with self.cond:
            if self.violation is None:
                self.violation = why
            self.failed_by_me = True
            send = not self.close_sent and self.state != CLOSED
            self.close_sent = True
            if self.state == OPEN:
                self.state = CLOSING
        if send:
            self.send_frame(8, struct.pack("!H", code))
        self.drop()

    def drop(self):
        with self.cond:
            if self.state == CLOSED and self.tcp_closed:
                return
            if not self.tcp_closed:
                self.dropped_by_me = True
            self.state = CLOSED
            self.cond.notify_all()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def kill(self):
        """Autobahn's killAfter: the peer did not end the connection in time."""
        if self.state != CLOSED:
            self.killed = True
            self.unclean_reason = self.unclean_reason or "dropped by the fuzzer (killAfter)"
            self.drop()

    # -- timers and waiting ----------------------------------------------

    def after(self, secs, fn):
        with self.cond:
            self.timers.append((time.time() + secs, fn))
            self.cond.notify_all()

    def run_timers(self):
        now = time.time()
        with self.cond:
            due = [t for t in self.timers if t[0] <= now]
            self.timers = [t for t in self.timers if t[0] > now]
        for _, fn in sorted(due, key=lambda t: t[0]):
            fn()

    def _run_until(self, secs, verdict):
        """Runs timers for secs, or until verdict() (checked under the lock)
        is True or False; returns that, False when secs run out."""
        end = time.time() + secs
        while True:
            self.run_timers()
            with self.cond:
                v = verdict()
                if v is not None:
                    return v
                now = time.time()
                if now >= end:
                    return False
                nxt = min([end] + [t[0] for t in self.timers])
                self.cond.wait(max(0.0, min(nxt - now, 0.5)))

    def wait(self, secs, until=None):
        """Runs timers for secs, or until until() holds (checked under the
        lock) or the connection is closed. True if until() held."""

        def verdict():
            if until is not None and until():
                return True
            return False if self.state == CLOSED else None

        return self._run_until(secs, verdict)

    def wait_closed(self, secs):
        """Until the TCP connection is gone (timers keep running)."""
        return self._run_until(secs, lambda: True if self.state == CLOSED and (self.tcp_closed or self.dropped_by_me)
                               else None)

    # -- receiving -------------------------------------------------------

    def _read_loop(self):
        try:
            self._parse()
            while True:
                try:
                    data = self.sock.recv(1 << 20)
                except (ConnectionResetError, BrokenPipeError):
                    data = b""
                except OSError:
                    data = b""
                if not data:
                    break
                self.buf += data
                self._parse()
                if self.violation is not None:
                    break
        except Exception as e:  # a bug in the fuzzer: report it as such
            with self.cond:
                self.violation = self.violation or "fuzzer error: %r" % e
        with self.cond:
            self.tcp_closed = True
            if self.state != CLOSED:
                if not self.was_clean and self.unclean_reason is None:
                    self.unclean_reason = "the peer dropped TCP without a closing handshake"
                self.state = CLOSED
            self.cond.notify_all()

    def _parse(self):
        while self.violation is None:
            avail = len(self.buf) - self.pos
            if avail < 2:
                break
            b0, b1 = self.buf[self.pos], self.buf[self.pos + 1]
            n = b1 & 0x7F
            hlen = 2
            if n == 126:
                hlen = 4
            elif n == 127:
                hlen = 10
            masked = bool(b1 & 0x80)
            if masked:
                hlen += 4
            if avail < hlen:
                break
            if n == 126:
                n = struct.unpack_from("!H", self.buf, self.pos + 2)[0]
                if n < 126:
                    return self.fail("length %d in 16 bits: not the minimal encoding (RFC 6455 5.2)" % n)
            elif n == 127:
                n = struct.unpack_from("!Q", self.buf, self.pos + 2)[0]
                if n >> 63:
                    return self.fail("frame length with the top bit set (RFC 6455 5.2)")
                if n < 65536:
                    return self.fail("length %d in 64 bits: not the minimal encoding (RFC 6455 5.2)" % n)
            if n > MAX_MESSAGE:
                return self.fail("frame of %d bytes" % n, 1009)
            if avail < hlen + n:
                break
            payload = bytes(self.buf[self.pos + hlen:self.pos + hlen + n])
            if masked:
                key = bytes(self.buf[self.pos + hlen - 4:self.pos + hlen])
                # A fresh key for each frame (RFC 6455 5.3): the same key
                # twice in a row is (but for a 2^-32 chance) a reused one.
                if key == self.last_mask:
                    return self.fail("the masking key %s of the previous frame again (RFC 6455 5.3)" % key.hex())
                self.last_mask = key
                payload = xor_mask(payload, key)
            self.pos += hlen + n
            if self.pos > (1 << 20) and self.pos * 2 > len(self.buf):
                del self.buf[:self.pos]
                self.pos = 0
            self.frames_in += 1
            self._frame(b0, masked, payload)

    def _frame(self, b0, masked, payload):
        fin = bool(b0 & 0x80)
        rsv = (b0 >> 4) & 7
        op = b0 & 15
        if self.close_received:
            return self.fail("a frame (opcode %d) after the close frame (RFC 6455 5.5.1)" % op)
        if masked != (self.role == "server"):
            return self.fail("masked frame from the server (RFC 6455 5.1)" if masked
                             else "unmasked frame from the client (RFC 6455 5.1)")
        if op not in (0, 1, 2, 8, 9, 10):
            return self.fail("reserved opcode %d (RFC 6455 5.2)" % op)
        control = op >= 8
        if rsv & 3 or (rsv & 4 and (not self.deflate or control or op == 0)):
            return self.fail("RSV bits %d set without an extension that defines them (RFC 6455 5.2)" % rsv)
        if control:
            if not fin:
                return self.fail("fragmented control frame (RFC 6455 5.5)")
            if len(payload) > 125:
                return self.fail("control frame of %d bytes (RFC 6455 5.5)" % len(payload))
            if op == 8:
                return self._close_frame(payload)
            if op == 9:
                if self.state == OPEN:
                    self.send_frame(10, payload)
                self._event(("ping", payload))
            else:
                self._event(("pong", payload))
            return
        if op == 0:
            if self.message_op is None:
                return self.fail("continuation frame without a message (RFC 6455 5.4)")
        else:
            if self.message_op is not None:
                return self.fail("new data frame inside a fragmented message (RFC 6455 5.4)")
            self.message_op = op
            self.message_rsv1 = bool(rsv & 4)
            self.message_parts = []
            self.message_len = 0
        self.message_parts.append(payload)
        self.message_len += len(payload)
        if self.message_len > MAX_MESSAGE:
            return self.fail("message over %d bytes" % MAX_MESSAGE, 1009)
        if not fin:
            return
        data = b"".join(self.message_parts)
        binary = self.message_op == 2
        compressed = self.message_rsv1
        self.message_op = None
        self.message_parts = []
        if compressed:
            try:
                data = self.deflate.decompress(data)
            except ValueError as e:
                return self.fail("compressed message: %s (RFC 7692)" % e)
        if not binary and not utf8_valid(data):
            return self.fail("text message that is not UTF-8 (RFC 6455 8.1)", 1007)
        self._event(("message", data, binary), compressed=compressed)

    def _close_frame(self, payload):
        if len(payload) == 1:
            return self.fail("close frame with a 1-byte payload (RFC 6455 5.5.1)")
        code = reason = None
        if len(payload) >= 2:
            code = struct.unpack("!H", payload[:2])[0]
            reason = payload[2:]
            if not close_code_valid(code):
                return self.fail("close code %d that may not be sent (RFC 6455 7.4)" % code)
            if not utf8_valid(reason):
                return self.fail("close reason that is not UTF-8 (RFC 6455 5.5.1)", 1007)
        with self.cond:
            self.close_received = True
            self.remote_code = code
            self.remote_reason = reason
            reply = not self.close_sent
            if reply:
                self.close_sent = True
                self.state = CLOSING
            self.was_clean = True
            self.cond.notify_all()
        if reply:
            self.send_frame(8, struct.pack("!H", code) if code is not None else b"")
        if self.role == "server":
            self.drop()  # the server ends TCP (RFC 6455 7.1.1)
        else:
            self.after(SERVER_DROP_TIMEOUT * SLACK, self._server_drop_timeout)

    def _server_drop_timeout(self):
        if not self.tcp_closed:
            self.was_clean = False
            self.unclean_reason = "the server did not close TCP within %.0f s of the closing handshake " \
                                  "(RFC 6455 7.1.1)" % (SERVER_DROP_TIMEOUT * SLACK)
            self.drop()

    def _event(self, ev, compressed=False):
        with self.cond:
            self.events.append(ev)
            self.cond.notify_all()
        h = self.handler
        if h is None:
            return
        if ev[0] == "message":
            h.on_message(self, ev[1], ev[2])
        elif ev[0] == "ping":
            h.on_ping(self, ev[1])
        else:
            h.on_pong(self, ev[1])


# ---------------------------------------------------------------------------
# Opening handshakes
# ---------------------------------------------------------------------------

def read_head(sock, limit=65536):
    """Bytes up to the blank line, and what came after them."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = sock.recv(65536)
        if not d:
            raise ConnectionError("connection closed during the handshake (%d bytes)" % len(buf))
        buf += d
        if len(buf) > limit:
            raise ConnectionError("handshake over %d bytes" % limit)
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head.decode("latin-1"), rest


def parse_head(head):
    lines = head.split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, sep, v = line.partition(":")
        if not sep:
            raise ValueError("header line without a colon: %r" % line)
        k = k.strip().lower()
        v = v.strip()
        headers[k] = headers[k] + ", " + v if k in headers else v
    return lines[0], headers


def tokens(value):
    return [t.strip().lower() for t in (value or "").split(",") if t.strip()]


def client_handshake(host, port, path, offers=None, timeout=10):
    """Connects and upgrades. Returns (sock, leftover bytes, DeflateParams or
    None, the 101's head); raises ValueError for a 101 that breaks RFC 6455
    4.2.2 or RFC 7692 (an extension not offered, or parameters the offer
    does not allow)."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.settimeout(None)
    key = base64.b64encode(os.urandom(16))
    req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n" % (path, host, port, key.decode()))
    if offers:
        req += "Sec-WebSocket-Extensions: %s\r\n" % ", ".join(o.header() for o in offers)
    sock.sendall(req.encode() + b"\r\n")
    sock.settimeout(timeout)
    head, rest = read_head(sock)
    sock.settimeout(None)
    status, headers = parse_head(head)
    if not status.startswith("HTTP/1.1 101"):
        raise ValueError("not a 101: %s" % status)
    if "websocket" not in tokens(headers.get("upgrade")) or "upgrade" not in tokens(headers.get("connection")):
        raise ValueError("101 without Upgrade: websocket / Connection: Upgrade")
    if headers.get("sec-websocket-accept", "").encode() != accept_key(key):
        raise ValueError("wrong Sec-WebSocket-Accept")
    agreed = None
    ext = headers.get("sec-websocket-extensions")
    if ext is not None:
        exts = parse_extensions(ext)
        if not offers or len(exts) != 1 or exts[0][0] != "permessage-deflate":
            raise ValueError("Sec-WebSocket-Extensions %r: not what was offered (RFC 6455 9.1)" % ext)
        errors = []
        for o in offers:
            try:
                agreed = o.agree(exts[0][1])
                break
            except ValueError as e:
                errors.append(str(e))
        if agreed is None:
            raise ValueError("permessage-deflate answer %r fits no offer: %s" % (ext, "; ".join(errors)))
    return sock, rest, agreed, head


def read_request(sock, timeout=10):
    """Reads a client's upgrade request (server side). Returns (path with
    query, headers, [Offer], leftover bytes); answers 400 and raises
    ValueError for a request that breaks RFC 6455 4.1 or RFC 7692."""
    sock.settimeout(timeout)
    head, rest = read_head(sock)
    sock.settimeout(None)
    request, headers = parse_head(head)
    parts = request.split(" ")
    problem = None
    if len(parts) != 3 or parts[0] != "GET" or parts[2] != "HTTP/1.1":
        problem = "request line %r" % request
    elif "host" not in headers:
        problem = "no Host"
    elif "websocket" not in tokens(headers.get("upgrade")) or "upgrade" not in tokens(headers.get("connection")):
        problem = "no Upgrade: websocket / Connection: Upgrade"
    elif headers.get("sec-websocket-version") != "13":
        problem = "Sec-WebSocket-Version %r" % headers.get("sec-websocket-version")
    else:
        try:
            if len(base64.b64decode(headers.get("sec-websocket-key", ""), validate=True)) != 16:
                problem = "Sec-WebSocket-Key is not 16 bytes"
        except ValueError:
            problem = "Sec-WebSocket-Key is not base64"
    offers = []
    if problem is None and "sec-websocket-extensions" in headers:
        try:
            for name, params in parse_extensions(headers["sec-websocket-extensions"]):
                if name == "permessage-deflate":
                    offers.append(Offer.parse(params))
        except ValueError as e:
            problem = "Sec-WebSocket-Extensions: %s" % e
    if problem is not None:
        sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        raise ValueError("bad WebSocket request: " + problem)
    return parts[1], headers, offers, rest


def send_101(sock, headers, agreed=None):
    """The server's 101 for the request's headers, with the
    permessage-deflate answer agreed (DeflateParams) if any."""
    resp = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: %s\r\n" % accept_key(headers["sec-websocket-key"].encode()).decode())
    if agreed is not None:
        resp += "Sec-WebSocket-Extensions: %s\r\n" % agreed.header()
    sock.sendall(resp.encode() + b"\r\n")
