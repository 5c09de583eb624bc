"""A custom dialect: the embedded storefront as its mobile app sees it.

The app sends ``X-Client: app`` on every call and has no search box, so the
journey skips ``search`` (reported as n/a, never 0). Everything else is the
storefront adapter's. A dialect for another platform subclasses
``scenarios.shop.BaseShop`` the same way (docs/adapters.md).
"""

from scenarios.client import ShopClient


class AppShop(ShopClient):
    OFFERS = ShopClient.OFFERS - {"search"}

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "X-Client": "app"}
