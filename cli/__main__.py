"""``python -m cli ...``: the same entry point as ``medgemma-spatial``."""

import sys

from cli.main import main

sys.exit(main())
