"""The ops endpoints, served by every process: the booking API adds them to its app, each
consumer serves them on its own small server (see server.py).

* ``GET /health/live``: 200 while the process's event loop answers.
* ``GET /health/ready``: 200 when every readiness check passes (the database answers, and
  for a consumer, its subscription is live); else 503 with ``{"status": "unready",
  "reason": ..., "checks": {...}}``.
* ``GET /metrics``: Prometheus text format.

The endpoints read ``request.app.state.ops`` (an :class:`~shared.observability.health.Ops`),
set by the process's wiring.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared.observability.health import Ops


def _ops(request: Request) -> Ops:
    ops: Ops = request.app.state.ops
    return ops


async def live(request: Request) -> Response:
    return JSONResponse({"status": "live", "service": _ops(request).service})


async def ready(request: Request) -> Response:
    ops = _ops(request)
    checks = await ops.readiness()
    failed = [f"{name}: {result}" for name, result in checks.items() if result != "ok"]
    if failed:
        body: dict[str, object] = {
            "status": "unready",
            "reason": "; ".join(failed),
            "checks": checks,
        }
        return JSONResponse(body, status_code=503, headers={"Cache-Control": "no-store"})
    return JSONResponse(
        {"status": "ready", "checks": checks}, headers={"Cache-Control": "no-store"}
    )


async def metrics(request: Request) -> Response:
    ops = _ops(request)
    return Response(await ops.metrics.render(ops.timeout), media_type=CONTENT_TYPE_LATEST)


def ops_routes() -> list[Route]:
    return [
        Route("/health/live", live, methods=["GET"], include_in_schema=False),
        Route("/health/ready", ready, methods=["GET"], include_in_schema=False),
        Route("/metrics", metrics, methods=["GET"], include_in_schema=False),
    ]
