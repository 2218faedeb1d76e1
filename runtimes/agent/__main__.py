"""``python -m runtimes.agent …``: see runtimes.agent.cli."""

import sys

from runtimes.agent.cli import main

if __name__ == "__main__":
    sys.exit(main())
