from codeloop.main import main

raise SystemExit(main())
