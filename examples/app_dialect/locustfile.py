"""The built-in shopper journey, reused with a custom dialect (``target.dialect: app_shop:AppShop``).

``AppShopper`` walks the same funnel as peakload's own shoppers (sign in,
browse, Zipf-picked product views, cart, checkout, pay) through the dialect
the profile names; add tasks or override steps as you need. The module is
imported as ``users`` so that only ``AppShopper`` is a user class of this file.

    peakload run --profile examples/app_dialect/profile.yaml            # closed model
    peakload run --profile examples/app_dialect/profile_arrivals.yaml   # open model
"""

import scenarios.users as users
from scenarios.custom import journey


class AppShopper(users.Shopper):
    weight = 1  # the built-in Shopper takes its weight from the profile's users: section

    @journey
    def visit(self) -> None:
        """One arrival of the open model: one shopping session (signs in on the first)."""
        if not self.signed_in:
            self.sign_in()
        users.ShoppingSession(self).run()
