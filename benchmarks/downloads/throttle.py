"""A loopback TCP relay that caps every connection's download rate, as a real store does.

On loopback one connection moves as much as the CPU allows, so fetching in parallel cannot
win; S3 and GCS serve each connection at tens of MB/s and scale by connections. The relay
accepts on 127.0.0.1, forwards each connection to the upstream port unchanged, and paces the
answer of each connection to ``rate`` bytes per second (idle time earns no credit).

    python benchmarks/downloads/throttle.py LISTEN_PORT UPSTREAM_PORT BYTES_PER_S
"""

from __future__ import annotations

import asyncio
import sys
import time

CHUNK = 256 << 10


async def pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rate: float | None
) -> None:
    due = time.monotonic()  # when the next chunk may go; idle time earns no credit
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
            if rate is not None:
                due = max(due, time.monotonic()) + len(data) / rate
                await asyncio.sleep(max(0.0, due - time.monotonic()))
    except ConnectionError:
        pass
    finally:
        writer.close()


async def serve(listen: int, upstream: int, rate: float) -> None:
    async def relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", upstream)
        await asyncio.gather(pipe(client_r, server_w, None), pipe(server_r, client_w, rate))

    server = await asyncio.start_server(relay, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
