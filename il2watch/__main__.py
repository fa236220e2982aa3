"""``python -m il2watch`` runs the same command line as the ``il2watch`` script."""

from il2watch.cli import main

raise SystemExit(main())
