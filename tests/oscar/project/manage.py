#!/usr/bin/env python
"""The test shop's manage.py (django-oscar 4.2 + django-oscar-api 3.3)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oscarshop.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
