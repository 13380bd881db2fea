"""The small servers the chat bench runs beside the app, each in its own process: the chat message store
(nx-27017) and the baseline, a bare WebSocket echo server.

A helper starts as `python -m bench.chat <role> [arg]` (bench/chat.py hands the role to ROLES here), so it loads
the same modules as the bench process: the echo server's RSS is the baseline of the table's RSS ratio. It prints its
port on the first line and runs until its stdin closes, so it also ends when the bench dies. `HelperProcess` is the
bench's side of that.

What only a helper needs is imported inside it: `python -m bench` imports every bench at start, and the other parts
report this process's peak RSS.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from bench.startup import REPO

ENTRY = "bench.chat"  # the module whose `__main__` runs a helper (see above)


class HelperProcess:
    """`python -m bench.chat <role> <arg>` in its own process group, up once it printed its port."""

    def __init__(self, role: str, arg: str = ""):
        self.proc = subprocess.Popen([sys.executable, "-m", ENTRY, role, arg], cwd=REPO, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"the {role} server did not start: {line!r}")
        self.port = int(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(5)


def serve_message_store(path: str) -> None:
    """nx-27017 (MongoDB wire protocol on SQLite), the app's embedded store, but outside the app (the app's default
    in-process store could not be read by a second process)."""
    from backend.chat.adapters.mongo import embedded_mongo

    client, stop = embedded_mongo(Path(path))
    print(client.address[1], flush=True)
    sys.stdin.read()
    stop()


def serve_echo(_arg: str) -> None:
    """The baseline: a bare WebSocket echo server (asyncio + wsproto; no socket.io, no state, no storage)."""
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, CloseConnection, Message, Ping, Request, TextMessage

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        parts: list[str] = []
        try:
            while data := await reader.read(65536):
                ws.receive_data(data)
                out = bytearray()
                for event in ws.events():
                    if isinstance(event, Request):
                        out += ws.send(AcceptConnection())
                    elif isinstance(event, TextMessage):
                        parts.append(event.data)
                        if event.message_finished:
                            out += ws.send(Message(data="".join(parts)))
                            parts.clear()
                    elif isinstance(event, Ping):
                        out += ws.send(event.response())
                    elif isinstance(event, CloseConnection):
                        out += ws.send(event.response())
                writer.write(out)
                await writer.drain()
        except Exception:  # a client going away mid-frame is not the server's problem
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        server.close()

    asyncio.run(main())


ROLES = {"mongo": serve_message_store, "echo": serve_echo}
