from sedbench.cli import main

raise SystemExit(main())
