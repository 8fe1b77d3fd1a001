from pftlab.cli import main

raise SystemExit(main())
