"""The test shop's seeding app: the ``peakload_seed`` management command."""
