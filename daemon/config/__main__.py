"""``python -m daemon.config --example`` or ``--reference [PAGE]``: see :func:`main`."""

from daemon.config.generate import main

raise SystemExit(main())
