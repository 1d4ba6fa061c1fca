"""``python -m spaceactors``: the command (see `spaceactors.cli`).

Python imports the `spaceactors` package before this module runs: a signal in that time ends
the command the way it ends any Python program (a traceback for SIGINT, silently for SIGTERM).
The console script ``spaceactors`` handles signals before it imports the package
(`spaceactors_command`): docs/cli.md.
"""

import sys

try:
    from spaceactors.cli import main
except KeyboardInterrupt:  # Ctrl-C while Python was still importing the command
    sys.stderr.write("spaceactors: interrupted by SIGINT while starting\n")
    raise SystemExit(130) from None

from spaceactors_command import _ended

raise SystemExit(_ended(main()))
