"""The console's sign-in: the admin token, typed once, becomes a session cookie.

The cookie is ``<expiry>.<nonce>.<HMAC>`` under a key derived from ADMIN_TOKEN: nothing is
stored on the server, and changing the token ends every session. It is HttpOnly (no script
reads it), SameSite=Strict (no other site's page sends it), scoped to /admin/console, and
Secure when the page is served over HTTPS. Every state-changing request must also carry the
session's CSRF token (an HMAC of its nonce, in the page: the ``X-CSRF-Token`` header htmx
sends, or the form field ``csrf``) and, when the browser says where it comes from, an
``Origin`` that is this server's own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import Depends, HTTPException, Request
from starlette.datastructures import FormData

from services.booking.settings import BookingSettings

COOKIE = "dlq_console"
PATH = "/admin/console"
LIFETIME = 8 * 3600
MAX_FORM_BYTES = 64 * 1024


class SignInRequired(Exception):
    """No valid session: the console answers with its sign-in page (app.py's handler)."""


def _key(settings: BookingSettings) -> bytes | None:
    if not settings.admin_enabled or settings.admin_token is None:
        return None
    token = settings.admin_token.get_secret_value().encode()
    return hmac.new(token, b"dead-letter console session", hashlib.sha256).digest()


def _sign(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Session:
    nonce: str
    expires: int
    csrf: str
    operator: str  # who signed in, as they said at sign-in: the audit log's actor

    def actor(self, request: Request) -> str:
        host = request.client.host if request.client else "unknown"
        return f"console:{self.operator}@{host}"


def token_matches(settings: BookingSettings, given: str) -> bool:
    if settings.admin_token is None or not settings.admin_enabled:
        return False
    expected = settings.admin_token.get_secret_value().encode()
    return secrets.compare_digest(given.encode(), expected)


def issue(settings: BookingSettings, operator: str) -> str:
    key = _key(settings)
    assert key is not None, "sessions are issued only when the admin token is set"
    name = base64.urlsafe_b64encode(operator.encode()).decode()
    payload = f"{int(time.time()) + LIFETIME}.{secrets.token_urlsafe(18)}.{name}"
    return f"{payload}.{_sign(key, payload)}"


def verify(settings: BookingSettings, cookie: str | None) -> Session | None:
    key = _key(settings)
    if key is None or not cookie or cookie.count(".") != 3:
        return None
    expires, nonce, name, signature = cookie.split(".")
    if not secrets.compare_digest(signature, _sign(key, f"{expires}.{nonce}.{name}")):
        return None
    if not expires.isdigit() or int(expires) < time.time():
        return None
    try:
        operator = base64.urlsafe_b64decode(name).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return Session(nonce, int(expires), _sign(key, f"csrf.{nonce}"), operator)


async def form(request: Request) -> FormData:
    """An ``application/x-www-form-urlencoded`` body (what forms and htmx send)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    body = await request.body()
    if not body:
        return FormData()
    if kind != "application/x-www-form-urlencoded":
        raise HTTPException(415, "send the form as application/x-www-form-urlencoded")
    if len(body) > MAX_FORM_BYTES:
        raise HTTPException(413, f"a console form is at most {MAX_FORM_BYTES} bytes")
    pairs = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return FormData([(name, value) for name, value in pairs])


def same_origin(request: Request) -> None:
    """Refuse a request another site's page made (browsers send Origin with every POST)."""
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.url.netloc}"
    if origin is not None and origin != own:
        raise HTTPException(403, f"cross-origin request refused: {origin} is not {own}")


async def session(request: Request) -> Session:
    settings: BookingSettings = request.app.state.settings
    if not settings.admin_enabled:
        raise HTTPException(503, "admin API disabled: set ADMIN_TOKEN")
    found = verify(settings, request.cookies.get(COOKIE))
    if found is None:
        raise SignInRequired()
    return found


async def action(request: Request, signed_in: Annotated[Session, Depends(session)]) -> Session:
    """A state-changing request: same origin and the session's CSRF token."""
    same_origin(request)
    given = request.headers.get("x-csrf-token") or str((await form(request)).get("csrf", ""))
    if not secrets.compare_digest(given.encode(), signed_in.csrf.encode()):
        raise HTTPException(403, "missing or wrong CSRF token: reload the console and try again")
    return signed_in
