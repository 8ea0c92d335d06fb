from pdf_worker.cli import main

raise SystemExit(main())
