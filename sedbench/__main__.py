from sedbench.commands.cli import main

raise SystemExit(main())
