"""Seed the test shop deterministically: countries, categories, products with stock and prices, users, a flash product.

The same options give the same rows (a fixed ``random.Random`` seed, no clock, no
uuid): products ``SKU-000001``.. (UPC = partner SKU), one category each, a stock
record with ``price`` in OSCAR_DEFAULT_CURRENCY (no tax: excl = incl) and
``num_in_stock`` 100000; users ``user00001``.. with password ``peakload`` and email
``user00001@example.test``; one flash product ``FLASH-0001`` with ``--flash-stock``
units; countries from pycountry with CN and GB open for shipping; then the search index.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.sites.models import Site
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from oscar.core.loading import get_model

WORDS = tuple(
    "classic wireless premium mini gift green tea phone shoes jacket lamp red blue pro silk smart bamboo travel winter cotton".split()
)
CATEGORY_NAMES = ("Phones", "Shoes", "Tea", "Home", "Books", "Toys", "Beauty", "Sports", "Garden", "Music", "Games", "Bags")
SHIPPING_COUNTRIES = ("CN", "GB")
FLASH_SKU = "FLASH-0001"
EVERYDAY_STOCK = 100_000
PASSWORD = "peakload"
EPOCH = datetime(2026, 11, 1, tzinfo=UTC)  # every seeded timestamp is EPOCH + n minutes: no clock in the data


class Command(BaseCommand):
    help = "Seed categories, products (with stock and prices), users, shipping countries and a flash-sale product."

    def add_arguments(self, parser):
        parser.add_argument("--products", type=int, default=240, help="everyday products SKU-000001.. (default 240)")
        parser.add_argument("--categories", type=int, default=8, help="root categories (default 8)")
        parser.add_argument("--users", type=int, default=400, help="users user00001.. (default 400)")
        parser.add_argument("--flash-stock", type=int, default=20, help=f"units of {FLASH_SKU} (default 20)")
        parser.add_argument("--seed", type=int, default=42, help="seed of titles and prices (default 42)")

    def handle(self, *args, products, categories, users, flash_stock, seed, **_options):
        if min(products, users, flash_stock) < 0 or categories < 1:
            raise CommandError("--products, --users and --flash-stock must be >= 0, --categories >= 1")
        Product = get_model("catalogue", "Product")
        if Product.objects.exists():
            raise CommandError("the shop is seeded already (products exist): seed a freshly migrated database")
        Country = get_model("address", "Country")
        if not Country.objects.exists():
            call_command("oscar_populate_countries", "--no-shipping", verbosity=0)  # the ISO list from pycountry
        with transaction.atomic():
            self._seed(products, categories, users, flash_stock, seed)
        # the search index of Oscar's catalogue, category and search pages (HAYSTACK_CONNECTIONS)
        call_command("rebuild_index", interactive=False, verbosity=0)
        self.stdout.write(f"seeded {categories} categories, {products} products + {FLASH_SKU} (stock {flash_stock}), {users} users")

    def _seed(self, products, categories, users, flash_stock, seed):
        Category = get_model("catalogue", "Category")
        Product = get_model("catalogue", "Product")
        ProductClass = get_model("catalogue", "ProductClass")
        ProductCategory = get_model("catalogue", "ProductCategory")
        Partner = get_model("partner", "Partner")
        StockRecord = get_model("partner", "StockRecord")
        Country = get_model("address", "Country")
        currency = settings.OSCAR_DEFAULT_CURRENCY
        rng = random.Random(seed)

        Site.objects.update_or_create(id=settings.SITE_ID, defaults={"domain": "127.0.0.1", "name": "peakload"})
        for code in SHIPPING_COUNTRIES:
            if not Country.objects.filter(iso_3166_1_a2=code).update(is_shipping_country=True):
                raise CommandError(f"country {code} missing from the countries table")
        partner = Partner.objects.create(name="Peakload Partner", code="peakload")
        pclass = ProductClass.objects.create(name="Goods", requires_shipping=True, track_stock=True)
        cats = []
        for i in range(categories):
            name = CATEGORY_NAMES[i % len(CATEGORY_NAMES)]
            if i >= len(CATEGORY_NAMES):
                name += f" {i // len(CATEGORY_NAMES) + 1}"
            cats.append(Category.add_root(name=name, description=f"Everything {name.lower()}."))

        def add(n: int, sku: str, title: str, category, stock: int, price: Decimal) -> None:
            product = Product.objects.create(
                upc=sku,
                title=title,
                product_class=pclass,
                structure=Product.STANDALONE,
                is_public=True,
                description=f"{title}: a peakload test product.",
            )
            ProductCategory.objects.create(product=product, category=category)
            record = StockRecord.objects.create(
                product=product,
                partner=partner,
                partner_sku=sku,
                price_currency=currency,
                price=price,
                num_in_stock=stock,
            )
            when = EPOCH + timedelta(minutes=n)  # auto_now(_add) fields, set after the insert
            Product.objects.filter(pk=product.pk).update(date_created=when, date_updated=when)
            StockRecord.objects.filter(pk=record.pk).update(date_created=when, date_updated=when)

        for n in range(1, products + 1):
            title = " ".join(w.title() for w in rng.sample(WORDS, 3)) + f" {n}"
            price = Decimal(rng.randint(500, 50_000)) / 100  # 5.00 .. 500.00
            add(n, f"SKU-{n:06d}", title, cats[(n - 1) % len(cats)], EVERYDAY_STOCK, price)
        add(products + 1, FLASH_SKU, "Flash Deal Phone", cats[0], flash_stock, Decimal("1.00"))

        User = get_user_model()
        # one hash, with a fixed salt, for all: the accounts share the password, and the rows are the same every time
        password = make_password(PASSWORD, salt="peakloadseed")
        User.objects.bulk_create(
            User(
                username=f"user{n:05d}",
                email=f"user{n:05d}@example.test",
                password=password,
                first_name="Peakload",
                last_name=f"User {n}",
                date_joined=EPOCH,
            )
            for n in range(1, users + 1)
        )
