"""`python -m chatstream`: the `chatstream` command (`chatstream db upgrade`, see `chatstream.cli`)."""

from __future__ import annotations

import sys

from chatstream.cli import main

if __name__ == "__main__":
    sys.exit(main())
