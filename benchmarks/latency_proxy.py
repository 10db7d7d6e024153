"""A TCP proxy that delays every client-to-server chunk by a fixed time, like a network hop.

Each chunk the client sends reaches the server ``--delay`` seconds later, in order; replies pass
straight back. So every TLS handshake and every request pays one round trip, while pipelined or
multiplexed traffic overlaps as it would on a real link (this is latency, not a bandwidth cap).

    python3 benchmarks/latency_proxy.py --target 127.0.0.1:5000 --delay 0.02

prints the port it listens on (``--port``, default a free one) as its first stdout line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys


async def _pipe_delayed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()

    task = asyncio.create_task(deliver())
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((loop.time() + delay, data))
            if not data:
                break
        await task
    except (OSError, asyncio.CancelledError):
        task.cancel()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.write_eof()


async def _serve(target: tuple[str, int], delay: float, port: int) -> None:
    async def handle(c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        try:
            s_reader, s_writer = await asyncio.open_connection(*target)
        except OSError:
            c_writer.close()
            return
        try:
            await asyncio.gather(_pipe_delayed(c_reader, s_writer, delay), _pipe(s_reader, c_writer))
        finally:
            for w in (c_writer, s_writer):
                with contextlib.suppress(OSError):
                    w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", required=True, help="host:port to forward to")
    p.add_argument("--delay", type=float, default=0.02, help="seconds added to each client chunk")
    p.add_argument("--port", type=int, default=0)
    a = p.parse_args()
    host, _, port = a.target.rpartition(":")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve((host, int(port)), a.delay, a.port))
    sys.exit(0)


if __name__ == "__main__":
    main()
