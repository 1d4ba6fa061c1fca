from spaceactors.cli import main

raise SystemExit(main())
