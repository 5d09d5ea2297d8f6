"""Allow ``python -m edge``."""

from edge.cli.main import main

raise SystemExit(main())
