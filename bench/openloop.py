"""`python -m bench.openloop URL RATE COUNT OUT`: open-loop load at a steady rate.

Request i is due at ``start + i / RATE`` whatever happened to earlier ones, and its latency
counts from that due time (so a stalled server cannot hide its queueing delay: no
coordinated omission). A lean HTTP/1.1 client over asyncio streams with keep-alive
connections (at most ``MAX_CONNECTIONS``) keeps the generator's CPU share small. Writes
``[[due wall time, latency ms, status], ...]`` to OUT as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from bench.payloads import booking_body

MAX_CONNECTIONS = 256
TIMEOUT = 10.0
KEEP_ALIVE = 4.0  # seconds: below the server's


class Client:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.slots = asyncio.Semaphore(MAX_CONNECTIONS)

    async def post(self, path: str, body: bytes) -> int:
        async with self.slots:
            reader, writer = await self._connection()
            try:
                head = (
                    f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\n"
                    "Content-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                )
                writer.write(head.encode() + body)
                answer = await reader.readuntil(b"\r\n\r\n")
                status = int(answer.split(b" ", 2)[1])
                length = 0
                for line in answer.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
            except BaseException:
                writer.close()
                raise
            self.idle.append((reader, writer, time.monotonic()))
            return status

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """An idle keep-alive connection the server has not closed yet, else a new one: a
        connection idle longer than the server's keep-alive timeout (uvicorn's 5 s) would
        fail the request it carries, after a lull, as if the server had refused it."""
        while self.idle:
            reader, writer, since = self.idle.pop()
            if time.monotonic() - since < KEEP_ALIVE:
                return reader, writer
            writer.close()
        return await self._open()

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(self.host, self.port)


async def run(url: str, rate: float, count: int, offset: int) -> list[tuple[float, float, int]]:
    host, port = url.removeprefix("http://").split(":")
    client = Client(host, int(port))
    results: list[tuple[float, float, int]] = []
    bodies = [json.dumps(booking_body(offset + i)).encode() for i in range(count)]

    async def one(due: float, due_wall: float, body: bytes) -> None:
        try:
            status = await asyncio.wait_for(client.post("/bookings", body), TIMEOUT)
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            status = 0
        results.append((due_wall, (time.perf_counter() - due) * 1000, status))

    start, wall = time.perf_counter() + 0.2, time.time() + 0.2
    tasks = []
    for i, body in enumerate(bodies):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due, wall + i / rate, body)))
    await asyncio.wait(tasks, timeout=TIMEOUT + 5)
    return results


def main() -> None:
    url, rate, count, out = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    offset = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    results = asyncio.run(run(url, rate, count, offset))
    Path(out).write_text(json.dumps(sorted(results)))


if __name__ == "__main__":
    main()


async def generate(
    url: str, rate: float, count: int, out: Path, offset: int = 0
) -> list[tuple[float, float, int]]:
    """Run the generator as a process of its own (it must not share a core's GIL with the
    bench) and return its results."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.openloop", url, str(rate), str(count), str(out), str(offset)
    )
    try:
        await asyncio.wait_for(process.wait(), count / rate + TIMEOUT + 30)
    except TimeoutError:
        process.kill()
        raise
    if process.returncode != 0:
        raise RuntimeError(f"the load generator exited with {process.returncode}")
    text = await asyncio.to_thread(out.read_text)
    return [(a, b, int(c)) for a, b, c in json.loads(text)]
