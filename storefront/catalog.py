"""Browsing: home, category pages, search and product detail."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from aiohttp import web

from . import db as schema
from .errors import not_found
from .state import State, json_bytes_response, json_response, state_of, traffic_of
from .validation import SKU_RE, query_int, query_str

__all__ = ["routes", "product_dict", "PRODUCT_COLUMNS"]

PRODUCT_COLUMNS = (
    schema.products.c.sku,
    schema.products.c.name,
    schema.products.c.category_id,
    schema.products.c.price_cents,
    schema.products.c.stock,
    schema.products.c.is_flash,
)
_BANNERS = [
    {"id": "double11", "title": "Singles' Day pre-sale", "link": "/api/categories/1/products"},
    {"id": "flash", "title": "Flash sale at midnight", "link": "/api/search?q=flash"},
]
_HOT_PRODUCTS = 8


def product_dict(row: Any) -> dict[str, Any]:
    return {
        "sku": row.sku,
        "name": row.name,
        "category_id": row.category_id,
        "price_cents": row.price_cents,
        "stock": row.stock,
        "is_flash": bool(row.is_flash),
    }


def _dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# Built once: the miss path then skips statement construction (and hits the compiled cache).
_PRODUCT_BY_SKU = sa.select(*PRODUCT_COLUMNS).where(schema.products.c.sku == sa.bindparam("sku"))


async def _load_product(st: State, sku: str) -> bytes:
    async with st.db.read() as conn:
        row = (await conn.execute(_PRODUCT_BY_SKU, {"sku": sku})).first()
    # An empty body marks "no such SKU", cached like a hit so misses stay cheap too.
    return b"" if row is None else _dumps(product_dict(row))


async def product_detail(request: web.Request) -> web.Response:
    """GET /api/products/{sku} (cached for ``cache_ttl_s``)."""
    sku = request.match_info["sku"]
    if not SKU_RE.match(sku):
        raise not_found("product")
    st = state_of(request)
    key = "product:" + sku
    body = st.cache.peek(key)
    if body is None:
        body = await st.cache.get_or_load(key, lambda: _load_product(st, sku))
    if not body:
        raise not_found(f"product {sku}")
    st.metrics.product_view(traffic_of(request))
    return json_bytes_response(body)


async def _load_home(st: State) -> bytes:
    async with st.db.read() as conn:
        cats = (await conn.execute(sa.select(schema.categories.c.id, schema.categories.c.name).order_by(schema.categories.c.id))).all()
        hot = (
            await conn.execute(
                sa.select(*PRODUCT_COLUMNS).where(schema.products.c.is_flash.is_(False)).order_by(schema.products.c.id).limit(_HOT_PRODUCTS)
            )
        ).all()
        flash = (
            await conn.execute(sa.select(*PRODUCT_COLUMNS).where(schema.products.c.is_flash.is_(True)).order_by(schema.products.c.id))
        ).all()
    return _dumps(
        {
            "banners": _BANNERS,
            "categories": [{"id": c.id, "name": c.name} for c in cats],
            "hot_products": [product_dict(p) for p in hot],
            "flash_sale": [product_dict(p) for p in flash],
        }
    )


async def home(request: web.Request) -> web.Response:
    """GET /api/home: banners, categories, hot and flash-sale products (cached)."""
    st = state_of(request)
    return json_bytes_response(await st.cache.get_or_load("home", lambda: _load_home(st)))


async def _load_category(st: State, category_id: int, page: int, size: int) -> bytes:
    p = schema.products
    async with st.db.read() as conn:
        name = (await conn.execute(sa.select(schema.categories.c.name).where(schema.categories.c.id == category_id))).scalar_one_or_none()
        if name is None:
            return b""
        total = (await conn.execute(sa.select(sa.func.count()).select_from(p).where(p.c.category_id == category_id))).scalar_one()
        rows = (
            await conn.execute(
                sa.select(*PRODUCT_COLUMNS).where(p.c.category_id == category_id).order_by(p.c.id).limit(size).offset((page - 1) * size)
            )
        ).all()
    return _dumps(
        {
            "category_id": category_id,
            "name": name,
            "page": page,
            "size": size,
            "total": total,
            "items": [product_dict(r) for r in rows],
        }
    )


async def category_products(request: web.Request) -> web.Response:
    """GET /api/categories/{category_id}/products?page=N&size=M."""
    raw_id = request.match_info["category_id"]
    if not raw_id.isascii() or not raw_id.isdigit() or len(raw_id) > 9:
        raise not_found("category")
    category_id = int(raw_id)
    page = query_int(request, "page", default=1, lo=1, hi=10_000)
    size = query_int(request, "size", default=20, lo=1, hi=100)
    st = state_of(request)
    body = await st.cache.get_or_load(f"category:{category_id}:{page}:{size}", lambda: _load_category(st, category_id, page, size))
    if not body:
        raise not_found(f"category {category_id}")
    return json_bytes_response(body)


async def search(request: web.Request) -> web.Response:
    """GET /api/search?q=...&page=N&size=M: case-insensitive substring match on names."""
    q = query_str(request, "q", max_len=100)
    page = query_int(request, "page", default=1, lo=1, hi=1_000)
    size = query_int(request, "size", default=20, lo=1, hi=50)
    p = schema.products
    # autoescape: %, _ and the escape char in q match themselves, not wildcards.
    cond = sa.func.lower(p.c.name).contains(q.lower(), autoescape=True)
    st = state_of(request)
    async with st.db.read() as conn:
        total = (await conn.execute(sa.select(sa.func.count()).select_from(p).where(cond))).scalar_one()
        rows = (await conn.execute(sa.select(*PRODUCT_COLUMNS).where(cond).order_by(p.c.id).limit(size).offset((page - 1) * size))).all()
    return json_response({"q": q, "page": page, "size": size, "total": total, "items": [product_dict(r) for r in rows]})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/home", home),
        web.get("/api/categories/{category_id}/products", category_products),
        web.get("/api/search", search),
        web.get("/api/products/{sku}", product_detail),
    ]
