from codeloop.cli import main

raise SystemExit(main())
