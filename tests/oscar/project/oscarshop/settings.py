"""A small django-oscar shop for peakload's tests: the stock Oscar apps, django-oscar-api, SQLite.

A test shop, not a production configuration: DEBUG is off, but the secret key is
fixed and passwords are hashed with MD5 (hashing the 400 seeded accounts with
PBKDF2, and checking one at every sign-in, would cost seconds of CPU on 2 cores).
CSRF stays on, exactly as django-oscar-api ships it: DRF's SessionAuthentication
checks the ``X-CSRFToken`` header on every unsafe request of a signed-in user.

Environment: ``OSCAR_DB_PATH`` (the SQLite file), ``OSCAR_SEARCH_INDEX`` (the Whoosh index
directory, default ``whoosh-index/`` beside the database) and ``OSCAR_MEDIA_ROOT`` (default
``media/`` beside the database).
"""

import os
from pathlib import Path

from oscar.defaults import *  # noqa: F403  (Oscar's own OSCAR_* defaults)

BASE_DIR = Path(__file__).resolve().parent.parent
DB_PATH = Path(os.environ.get("OSCAR_DB_PATH") or BASE_DIR / "oscar.sqlite3")

SECRET_KEY = "peakload-test-shop-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
SITE_ID = 1
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-gb"
USE_I18N = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

# Test shop only: MD5 is a fast, insecure hasher (never use it for real accounts).
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "django.contrib.flatpages",
    "oscar.config.Shop",
    "oscar.apps.analytics.apps.AnalyticsConfig",
    "oscar.apps.checkout.apps.CheckoutConfig",
    "oscar.apps.address.apps.AddressConfig",
    "oscar.apps.shipping.apps.ShippingConfig",
    "oscar.apps.catalogue.apps.CatalogueConfig",
    "oscar.apps.catalogue.reviews.apps.CatalogueReviewsConfig",
    "oscar.apps.communication.apps.CommunicationConfig",
    "oscar.apps.partner.apps.PartnerConfig",
    "oscar.apps.basket.apps.BasketConfig",
    "oscar.apps.payment.apps.PaymentConfig",
    "oscar.apps.offer.apps.OfferConfig",
    "oscar.apps.order.apps.OrderConfig",
    "oscar.apps.customer.apps.CustomerConfig",
    "oscar.apps.search.apps.SearchConfig",
    "oscar.apps.voucher.apps.VoucherConfig",
    "oscar.apps.wishlists.apps.WishlistsConfig",
    "oscar.apps.dashboard.apps.DashboardConfig",
    "oscar.apps.dashboard.reports.apps.ReportsDashboardConfig",
    "oscar.apps.dashboard.users.apps.UsersDashboardConfig",
    "oscar.apps.dashboard.orders.apps.OrdersDashboardConfig",
    "oscar.apps.dashboard.catalogue.apps.CatalogueDashboardConfig",
    "oscar.apps.dashboard.offers.apps.OffersDashboardConfig",
    "oscar.apps.dashboard.partners.apps.PartnersDashboardConfig",
    "oscar.apps.dashboard.pages.apps.PagesDashboardConfig",
    "oscar.apps.dashboard.ranges.apps.RangesDashboardConfig",
    "oscar.apps.dashboard.reviews.apps.ReviewsDashboardConfig",
    "oscar.apps.dashboard.vouchers.apps.VouchersDashboardConfig",
    "oscar.apps.dashboard.communications.apps.CommunicationsDashboardConfig",
    "oscar.apps.dashboard.shipping.apps.ShippingDashboardConfig",
    "widget_tweaks",
    "haystack",
    "treebeard",
    "sorl.thumbnail",
    "django_tables2",
    "rest_framework",
    "oscarapi",
    "peakload_seed",
]

# Oscar's stock middleware (django-oscar-api "out of the box": plain cookie sessions, CSRF on).
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "oscar.apps.basket.middleware.BasketMiddleware",
    "django.contrib.flatpages.middleware.FlatpageFallbackMiddleware",
]

ROOT_URLCONF = "oscarshop.urls"
WSGI_APPLICATION = "oscarshop.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.template.context_processors.i18n",
                "django.contrib.messages.context_processors.messages",
                "oscar.apps.search.context_processors.search_form",
                "oscar.apps.checkout.context_processors.checkout",
                "oscar.apps.communication.notifications.context_processors.notifications",
                "oscar.core.context_processors.metadata",
            ],
        },
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(DB_PATH),
        # Several gunicorn workers write to one file: BEGIN IMMEDIATE takes the write lock at the
        # start of a transaction (a deferred one that upgrades later fails at once with "database
        # is locked" -> HTTP 500), WAL lets readers go on while one writer writes, and the busy
        # timeout lets writers queue for the lock instead of failing.
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
}

AUTHENTICATION_BACKENDS = [
    "oscar.apps.customer.auth_backends.EmailBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Oscar's catalogue, category and search pages are haystack searches. The "simple" backend cannot
# narrow by category (every category page would list 0 products), so the shop uses Whoosh, a
# pure-Python index that ``peakload_seed`` builds next to the database (read-only at run time).
HAYSTACK_CONNECTIONS = {
    "default": {
        "ENGINE": "haystack.backends.whoosh_backend.WhooshEngine",
        "PATH": os.environ.get("OSCAR_SEARCH_INDEX") or str(DB_PATH.parent / "whoosh-index"),
    }
}
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # nothing leaves the machine

STATIC_URL = "/static/"  # not served: the API is what the tests use
MEDIA_ROOT = os.environ.get("OSCAR_MEDIA_ROOT") or str(DB_PATH.parent / "media")
MEDIA_URL = "/media/"

OSCAR_SHOP_NAME = "Peakload Oscar"
OSCAR_DEFAULT_CURRENCY = "CNY"
OSCAR_ALLOW_ANON_CHECKOUT = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
