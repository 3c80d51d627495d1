"""Secrets that must never run a production system: the public examples of
deploy/.env.example, known defaults, and tokens too short to resist guessing.

Outside ``DEV_MODE`` every process refuses to start with one (shared/settings.py); so does
deploy/rabbitmq/make_definitions.py. The check looks at the value only, so it catches an
example copied anywhere (an env file, a URL's password, a compose override). Every secret in
deploy/.env.example is refused (tests/unit/test_secrets.py keeps it so).
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

# Every example value in deploy/.env.example carries one of these, and so does the webhook
# secret's default (services/notification/settings.py).
PLACEHOLDER_MARKERS = ("change-me", "changeme", "change_me")
# 256 bits: a bearer token or an HMAC-SHA256 key shorter than its hash is weaker than it
# needs to be, and a short one can be guessed (a bearer token) or searched for offline from
# one signed request (a webhook key).
MIN_KEY_BYTES = 32


def weakness(value: str, *, min_bytes: int = 0) -> str | None:
    """Why ``value`` must not be a production secret, or None. Never repeats the value."""
    if any(marker in value.lower() for marker in PLACEHOLDER_MARKERS):
        return "is a placeholder (from deploy/.env.example or a default): set a secret of your own"
    size = len(value.encode())
    if size < min_bytes:
        return f"is {size} bytes long; at least {min_bytes} are needed"
    return None


def url_password(url: str | None) -> str | None:
    """The password in ``url`` (decoded), or None when it has none."""
    if not url:
        return None
    try:
        password = urlsplit(url).password
    except ValueError:  # a malformed URL: the client library says what is wrong with it
        return None
    return None if password is None else unquote(password)


def url_user(url: str | None) -> str | None:
    """The user name in ``url`` (decoded), or None when it has none."""
    if not url:
        return None
    try:
        user = urlsplit(url).username
    except ValueError:
        return None
    return None if user is None else unquote(user)
