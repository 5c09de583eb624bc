import sys

from peakload.cli import main

sys.exit(main())
