"""Closed-loop load with wrk (C, one thread): N clients, each sending its next
``POST /bookings`` as soon as the previous answer arrives, for a fixed time."""

from __future__ import annotations

import asyncio
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from bench import BenchError
from bench.config import RAW
from bench.payloads import NIGHTS_SPREAD, ROOM_TYPES

LUA = """
local types = {%(types)s}
local counter = %(offset)d
local base = os.time() + 10 * 86400
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  counter = counter + 1
  local t = types[(counter %% #types) + 1]
  local day = base + (math.floor(counter / #types) %% %(spread)d) * 86400
  local body = string.format(
    '{"hotel_id":%%d,"room_type":"%%s","check_in":"%%s","check_out":"%%s",' ..
    '"guest_name":"Bench Guest","guest_email":"guest%%d@example.com"}',
    t[1], t[2], os.date("!%%Y-%%m-%%d", day), os.date("!%%Y-%%m-%%d", day + 86400), counter)
  return wrk.format(nil, "/bookings", nil, body)
end
"""
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True)
class WrkResult:
    clients: int
    seconds: float
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


def available() -> bool:
    return shutil.which("wrk") is not None


def script(offset: int) -> Path:
    types = ", ".join(f'{{{hotel}, "{room}"}}' for hotel, room in ROOM_TYPES)
    path = RAW / f"post_bookings_{offset}.lua"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(LUA % {"types": types, "offset": offset, "spread": NIGHTS_SPREAD})
    return path


async def run(url: str, clients: int, seconds: float, offset: int = 0) -> WrkResult:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise BenchError("wrk is not installed (apt-get install wrk)")
    args = ["-t1", f"-c{clients}", f"-d{seconds:.0f}s", "--latency", "--timeout", "5s"]
    process = await asyncio.create_subprocess_exec(
        wrk,
        *args,
        "-s",
        str(script(offset)),
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), seconds + 30)
    except TimeoutError:
        process.kill()
        raise BenchError(f"wrk against {url} did not finish") from None
    return parse(out.decode(), clients, seconds)


def parse(text: str, clients: int, seconds: float) -> WrkResult:
    def latency(pct: str) -> float:
        match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
        if match is None:
            raise BenchError(f"no {pct}% latency in wrk output:\n{text}")
        return float(match[1]) * UNITS[match[2]]

    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if rate is None:
        raise BenchError(f"no Requests/sec in wrk output:\n{text}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    errors = int(non_2xx[1]) if non_2xx else 0
    if socket:
        errors += sum(int(socket[i]) for i in range(1, 5))
    return WrkResult(clients, seconds, float(rate[1]), latency("50"), latency("99"), errors)
