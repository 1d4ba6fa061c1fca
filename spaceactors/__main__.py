"""``python -m spaceactors``: the command (see `spaceactors.cli`)."""

import sys

try:
    from spaceactors.cli import main
except KeyboardInterrupt:  # Ctrl-C while Python was still importing the command
    sys.stderr.write("spaceactors: interrupted by SIGINT while starting\n")
    raise SystemExit(130) from None

raise SystemExit(main())
