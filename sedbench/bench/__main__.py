from sedbench.bench.run import main

raise SystemExit(main())
