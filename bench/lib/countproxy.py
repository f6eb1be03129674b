#!/usr/bin/env python3
"""A TCP proxy on 127.0.0.1 that counts the bytes it carries, for measuring what a client sends.

Usage: countproxy.py TARGET_PORT TOTALS_FILE
Prints its own port, then forwards every connection to 127.0.0.1:TARGET_PORT. TOTALS_FILE holds
"BYTES_UP BYTES_DOWN" (client to server, server to client, all connections since the start), rewritten
whenever a connection closes and every half second.
"""
import asyncio
import sys

totals = [0, 0]


async def pump(reader, writer, index):
    try:
        while True:
            data = await reader.read(1 << 16)
            if not data:
                break
            totals[index] += len(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


def save(path):
    with open(path + ".tmp", "w") as f:
        f.write(f"{totals[0]} {totals[1]}\n")
    import os
    os.replace(path + ".tmp", path)


async def main():
    target, path = int(sys.argv[1]), sys.argv[2]

    async def handle(client_reader, client_writer):
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(pump(client_reader, server_writer, 0), pump(server_reader, client_writer, 1))
        save(path)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    save(path)
    while True:
        await asyncio.sleep(0.5)
        save(path)


asyncio.run(main())
