"""Suite-wide: the CI skip policy (tests/skip_policy.py)."""

pytest_plugins = ["tests.skip_policy"]
