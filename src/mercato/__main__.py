"""``python -m mercato`` is the ``mercato`` command."""

from mercato.cli import main

raise SystemExit(main())
