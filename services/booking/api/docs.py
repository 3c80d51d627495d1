"""The docs UI at /docs, with Swagger UI's files served by this process (from the
fastapi-swagger wheel, which packages the current Swagger UI release) instead of FastAPI's
default CDN: the page then works offline, behind a strict egress firewall or CSP, and always
matches the OpenAPI 3.1 document FastAPI generates."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


@router.get("/docs")
async def docs(request: Request) -> HTMLResponse:
    def asset(name: str) -> str:
        return str(request.url_for("docs_asset", name=name))

    return get_swagger_ui_html(
        openapi_url=request.scope.get("root_path", "").rstrip("/") + request.app.openapi_url,
        title=f"{request.app.title} - API docs",
        swagger_js_url=asset("swagger-ui-bundle.js"),
        swagger_css_url=asset("swagger-ui.css"),
        swagger_favicon_url=asset("favicon-32x32.png"),
        swagger_ui_parameters={"displayRequestDuration": True},
    )


@router.get("/docs/assets/{name}", name="docs_asset")
async def docs_asset(name: str) -> Response:
    if name not in ASSETS:
        raise HTTPException(404, f"no docs asset {name!r}")
    content = (resources.files("fastapi_swagger") / "resources" / name).read_bytes()
    return Response(content, media_type=ASSETS[name], headers={"Cache-Control": "max-age=3600"})
