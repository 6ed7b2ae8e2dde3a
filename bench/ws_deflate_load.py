"""The load of bench/ws_deflate.sh: C connections to ws://127.0.0.1:PORT/ws
(python3-websockets, permessage-deflate offered or not), each sending
windows of W messages (JSON documents of SIZE bytes, 64 different ones in
turn, as compressible as typical API data) and awaiting their echoes, each
checked, for SECONDS. Prints "messages N extensions E sent S received R":
S and R are the TCP payload bytes of all connections each way (the
kernel's tcpi_bytes_acked and tcpi_bytes_received, handshakes included).

  ws_deflate_load.py PORT SECONDS off|on|ctx [SIZE] [CONNECTIONS] [WINDOW]

off: no extension offered; on and ctx: permessage-deflate offered as
python3-websockets does by default (the server chooses context takeover)."""
import asyncio, json, socket, struct, sys, time

import websockets

port, seconds, mode = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
size = int(sys.argv[4]) if len(sys.argv) > 4 else 2048
conns = int(sys.argv[5]) if len(sys.argv) > 5 else 4
window = int(sys.argv[6]) if len(sys.argv) > 6 else 16


def document(n, seed):
    items, i = [], 0
    while len(json.dumps({"seq": seed, "items": items})) < n:
        k = i + seed * 31
        items.append({"id": k, "name": "sensor-%d" % (k % 17), "status": ("ok", "warn", "ok")[k % 3],
                      "value": round((k * 7919) % 1000 / 10.0, 1), "unit": "celsius"})
        i += 1
    return json.dumps({"seq": seed, "items": items})[:n]


# 64 different documents, sent in turn: like a feed of readings, each
# message alike in shape but not a copy of the one before.
MESSAGES = [document(size, k) for k in range(64)]
count = 0
extensions = set()
wire = [0, 0]


def tcp_bytes(sock):
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return struct.unpack_from("QQ", info, 120)  # tcpi_bytes_acked, tcpi_bytes_received


async def one(deadline):
    global count
    compression = None if mode == "off" else "deflate"
    async with websockets.connect("ws://127.0.0.1:%d/ws" % port, compression=compression,
                                  max_size=None, ping_interval=None) as ws:
        extensions.add(",".join(e.name for e in ws.extensions) or "-")
        k = 0
        while time.monotonic() < deadline:
            for j in range(window):
                await ws.send(MESSAGES[(k + j) % 64])
            for j in range(window):
                if await ws.recv() != MESSAGES[(k + j) % 64]:
                    raise SystemExit("a wrong echo")
            k += window
            count += window
        sent, received = tcp_bytes(ws.transport.get_extra_info("socket"))
        wire[0] += sent
        wire[1] += received


async def main():
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(one(deadline) for _ in range(conns)))
    print("messages %d extensions %s sent %d received %d" % (count, "/".join(sorted(extensions)),
                                                             wire[0], wire[1]))


asyncio.run(main())
