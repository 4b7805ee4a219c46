"""``python -m geobridge`` runs the command line."""

import sys

from geobridge.cli import main

sys.exit(main())
