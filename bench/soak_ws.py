"""WebSocket cycles for bench/soak.sh: connect, handshake, one message and
its echo, close handshake, close; N times in sequence against 127.0.0.1.
Prints "cycles N errors E". Every socket operation has a 5 s timeout."""
import base64, os, socket, struct, sys

port, n = int(sys.argv[1]), int(sys.argv[2])
socket.setdefaulttimeout(5)


def frame(payload, op):
    mask = os.urandom(4)
    body = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
    return struct.pack("!BB", 0x80 | op, 0x80 | len(payload)) + mask + body


def need(s, k):
    b = b""
    while len(b) < k:
        d = s.recv(k - len(b))
        if not d:
            raise EOFError("closed early")
        b += d
    return b


def read_frame(s):
    b0, b1 = need(s, 2)
    k = b1 & 0x7F
    if k == 126:
        k = struct.unpack("!H", need(s, 2))[0]
    return b0 & 15, need(s, k)


errors = 0
for i in range(n):
    try:
        s = socket.create_connection(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16))
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: soak\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += need(s, 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise ValueError("no 101")
        msg = b"soak message %d" % i
        s.sendall(frame(msg, 1))
        if read_frame(s) != (1, msg):
            raise ValueError("bad echo")
        s.sendall(frame(b"\x03\xe8", 8))
        op, _ = read_frame(s)
        if op != 8:
            raise ValueError("no close frame")
        s.close()
    except Exception as e:  # counted, and the first few printed
        errors += 1
        if errors <= 5:
            print("ws cycle %d: %r" % (i, e), file=sys.stderr)
print("cycles %d errors %d" % (n, errors))
