from helm_e2e.cli.main import main

raise SystemExit(main())
