#!/usr/bin/env python3
"""An MLLP server from python-hl7 (`pip install hl7`), a peer nobody on the medbus team wrote.

Answers every message with python-hl7's own `Message.create_ack()` (AA, MSA-2 = the
message's MSH-10) on connections it keeps open. Listens on 127.0.0.1 only. Prints
"READY <port>" once listening, so a test can wait for it.

    python3 hl7_ack_server.py --port 2575
"""

import argparse
import asyncio
import sys

import hl7
from hl7.mllp import start_hl7_server


async def answer(reader, writer):
    peer = writer.get_extra_info("peername")
    try:
        while not writer.is_closing():
            message = await reader.readmessage()
            writer.writemessage(message.create_ack())
            await writer.drain()
    except asyncio.IncompleteReadError:
        pass  # the client closed the connection between messages
    except Exception as e:  # unparseable input: say so and drop the connection, as a peer would
        print(f"closing {peer}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
    finally:
        writer.close()


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = await start_hl7_server(answer, "127.0.0.1", args.port)
    print(f"READY {args.port} hl7 {hl7.__version__}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
