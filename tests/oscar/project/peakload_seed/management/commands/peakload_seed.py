"""Seed the test shop deterministically: categories, products with stock and prices, users, countries, a flash product."""

from __future__ import annotations

import random
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.sites.models import Site
from django.core.management.base import BaseCommand
from django.db import transaction
from oscar.core.loading import get_model

WORDS = ("classic", "wireless", "premium", "mini", "gift", "tea", "phone", "shoes", "jacket", "lamp", "red", "blue", "pro")
CATEGORY_NAMES = ("Phones", "Shoes", "Tea", "Home", "Books", "Toys", "Beauty", "Sports", "Garden", "Music", "Games", "Bags")


class Command(BaseCommand):
    help = "Seed categories, products (with stock), users and a flash-sale product."

    def add_arguments(self, parser):
        parser.add_argument("--products", type=int, default=240)
        parser.add_argument("--categories", type=int, default=8)
        parser.add_argument("--users", type=int, default=400)
        parser.add_argument("--flash-stock", type=int, default=20)
        parser.add_argument("--seed", type=int, default=42)

    @transaction.atomic
    def handle(self, *args, products, categories, users, flash_stock, seed, **_kw):
        rng = random.Random(seed)
        Category = get_model("catalogue", "Category")
        Product = get_model("catalogue", "Product")
        ProductClass = get_model("catalogue", "ProductClass")
        ProductCategory = get_model("catalogue", "ProductCategory")
        Partner = get_model("partner", "Partner")
        StockRecord = get_model("partner", "StockRecord")
        Country = get_model("address", "Country")
        Site.objects.update_or_create(id=1, defaults={"domain": "127.0.0.1", "name": "peakload"})
        for code, a3, num, name in (("CN", "CHN", "156", "China"), ("GB", "GBR", "826", "United Kingdom")):
            Country.objects.update_or_create(
                iso_3166_1_a2=code,
                defaults={
                    "iso_3166_1_a3": a3,
                    "iso_3166_1_numeric": num,
                    "name": name,
                    "printable_name": name,
                    "is_shipping_country": True,
                },
            )
        partner, _ = Partner.objects.get_or_create(name="Peakload Partner", code="peakload")
        pclass, _ = ProductClass.objects.get_or_create(name="Goods", defaults={"requires_shipping": True, "track_stock": True})
        cats = [
            Category.add_root(name=CATEGORY_NAMES[i % len(CATEGORY_NAMES)] + ("" if i < len(CATEGORY_NAMES) else f" {i}"))
            for i in range(categories)
        ]

        def add(upc: str, title: str, cat, stock: int, price: Decimal) -> None:
            p = Product.objects.create(upc=upc, title=title, product_class=pclass, structure="standalone", is_public=True)
            ProductCategory.objects.create(product=p, category=cat)
            StockRecord.objects.create(product=p, partner=partner, partner_sku=upc, price=price, num_in_stock=stock, price_currency="CNY")

        for n in range(1, products + 1):
            title = " ".join(rng.sample(WORDS, 2)).title() + f" {n}"
            add(f"SKU-{n:06d}", title, cats[n % len(cats)], 100_000, Decimal(rng.randint(500, 50_000)) / 100)
        add("FLASH-0001", "Flash Deal Phone", cats[0], flash_stock, Decimal("1.00"))
        User = get_user_model()
        pw = make_password("peakload")
        User.objects.bulk_create(
            [User(username=f"user{n:05d}", email=f"user{n:05d}@example.test", password=pw) for n in range(1, users + 1)]
        )
        self.stdout.write(f"seeded {categories} categories, {products} products + FLASH-0001 (stock {flash_stock}), {users} users")
