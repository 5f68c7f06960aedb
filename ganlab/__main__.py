from ganlab.cli import main

raise SystemExit(main())
