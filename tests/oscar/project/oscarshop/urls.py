"""The test shop's URLs: django-oscar-api under /api/, Oscar's own pages (catalogue, search, ...) at the root."""

from django.apps import apps
from django.urls import include, path

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/", include("oscarapi.urls")),
    path("", include(apps.get_app_config("oscar").urls[0])),
]
