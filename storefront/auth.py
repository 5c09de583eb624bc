"""Users, password hashing and bearer-token sessions."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import re
import secrets

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.exc import IntegrityError

from . import db as schema
from .accesslog import USER_KEY
from .errors import ApiError, bad_request, conflict, unauthorized
from .state import json_response, state_of
from .validation import read_json_object, require_str

__all__ = ["hash_password", "verify_password", "register", "login", "current_user", "routes"]

_USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,64}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
_TOKEN_CACHE_MAX = 100_000


def hash_password(password: str, *, iterations: int, salt: bytes | None = None) -> str:
    """PBKDF2-SHA256 as ``pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>``.

    The iteration count is configurable because this shop is a load-test
    target on a shared CPU, not a vault; the stored string carries it.

    Usage: ``hash_password("s3cret", iterations=10_000)``
    """
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        algo, iterations, salt_hex, digest_hex = stored.split("$")
        if algo != "pbkdf2_sha256":
            return False
        digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), bytes.fromhex(salt_hex), int(iterations))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest.hex(), digest_hex)


def _credentials(body: dict) -> tuple[str, str]:
    username = require_str(body, "username", max_len=64, min_len=3)
    if not _USERNAME.match(username):
        raise bad_request("invalid_field", "username must be 3..64 of A-Z a-z 0-9 _ . -")
    password = require_str(body, "password", max_len=128, min_len=6)
    return username, password


async def register(request: web.Request) -> web.Response:
    """POST /api/users {"username","password"} -> 201 {"user_id"}."""
    st = state_of(request)
    username, password = _credentials(await read_json_object(request))
    # Hashing releases the GIL; keep it off the event loop.
    pw_hash = await asyncio.to_thread(hash_password, password, iterations=st.config.password_iterations)
    try:
        async with st.db.write() as conn:
            result = await conn.execute(
                schema.users.insert().values(username=username, password_hash=pw_hash, created_at=dt.datetime.now(dt.UTC))
            )
            user_id = int(result.inserted_primary_key[0])
    except IntegrityError:
        raise conflict("username_taken", f"username {username!r} is already registered") from None
    return json_response({"user_id": user_id, "username": username}, status=201)


async def login(request: web.Request) -> web.Response:
    """POST /api/sessions {"username","password"} -> {"token","user_id"}."""
    st = state_of(request)
    username, password = _credentials(await read_json_object(request))
    async with st.db.read() as conn:
        row = (
            await conn.execute(sa.select(schema.users.c.id, schema.users.c.password_hash).where(schema.users.c.username == username))
        ).first()
    ok = row is not None and await asyncio.to_thread(verify_password, password, row.password_hash)
    if not ok:
        raise ApiError(401, "invalid_credentials", "username or password is wrong")
    token = secrets.token_urlsafe(32)
    async with st.db.write() as conn:
        await conn.execute(schema.sessions.insert().values(token=token, user_id=row.id, created_at=dt.datetime.now(dt.UTC)))
    if len(st.tokens) < _TOKEN_CACHE_MAX:
        st.tokens[token] = row.id  # the access log names the user of every later request with this token
    request[USER_KEY] = row.id
    return json_response({"token": token, "user_id": row.id})


async def current_user(request: web.Request) -> int:
    """The user id behind ``Authorization: Bearer <token>``; 401 otherwise."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not _TOKEN.match(token):
        raise unauthorized()
    st = state_of(request)
    user_id = st.tokens.get(token)
    if user_id is not None:
        request[USER_KEY] = user_id
        return user_id
    async with st.db.read() as conn:
        user_id = (await conn.execute(sa.select(schema.sessions.c.user_id).where(schema.sessions.c.token == token))).scalar_one_or_none()
    if user_id is None:
        raise unauthorized("token is unknown; log in again with POST /api/sessions")
    if len(st.tokens) >= _TOKEN_CACHE_MAX:
        st.tokens.clear()
    st.tokens[token] = user_id
    request[USER_KEY] = user_id
    return user_id


def routes() -> list[web.RouteDef]:
    return [web.post("/api/users", register), web.post("/api/sessions", login)]
