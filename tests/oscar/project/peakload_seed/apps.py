from django.apps import AppConfig


class PeakloadSeedConfig(AppConfig):
    name = "peakload_seed"
    default_auto_field = "django.db.models.AutoField"
