"""``python -m hub`` is the ``ledgerhub`` command."""

import sys

from hub.cli import main

sys.exit(main())
