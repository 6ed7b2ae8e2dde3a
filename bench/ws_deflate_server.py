"""The reference point of bench/ws_deflate.sh: python3-websockets' own echo
server on 127.0.0.1:PORT, permessage-deflate on (its default) or off.

  ws_deflate_server.py PORT on|off"""
import asyncio, sys

import websockets

port, mode = int(sys.argv[1]), sys.argv[2]


async def echo(ws, _path=None):
    async for message in ws:
        await ws.send(message)


async def main():
    compression = "deflate" if mode == "on" else None
    async with websockets.serve(echo, "127.0.0.1", port, compression=compression, max_size=None,
                                ping_interval=None):
        await asyncio.Future()


asyncio.run(main())
