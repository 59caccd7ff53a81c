"""Floor 5: the command line. bot.py is its entry point; each command's body is a module here, which
calls into service/ (the running bot) and the stages below it — never the other way round.

    main.py        the parser, one small ``cmd_*`` adapter per command, logging set-up, exit codes
    run            service/app.py ``run_bot`` (the running bot itself lives in service/)
    demo           demo.py, over bundled feeds served by feedserver.py (127.0.0.1)
    check          checks.py (also the config and store openers every command shares)
    match          match.py
    eval, train    eval.py
    digest         digest.py
    health         health.py (standard library only: Docker's HEALTHCHECK starts it every minute)
    feeds          feeds.py (OPML import and export)
    backfill       backfill.py
    labels         labels.py (analysts' votes as labelled JSON Lines)
    search         search.py
    export         export.py (the file itself is store/export.py, shared with the chat's /export)
    store copy     store_copy.py (every table of one store into an empty one, SQLite or PostgreSQL)
"""
