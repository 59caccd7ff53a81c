"""DPRK–Russia monitor: command line and composition root.

    python bot.py run                 the long-running Telegram bot (needs TELEGRAM_BOT_TOKEN)
    python bot.py run --role poller,sender   one worker of several on PostgreSQL (roles: all poller sender web)
    python bot.py demo                one cycle over the bundled example feeds; prints what would be sent
    python bot.py check               validate config.yaml and the rule files; non-zero exit on any problem
    python bot.py match --input FILE  match a JSON Lines or RSS/Atom/RDF file; one JSON object per item
    python bot.py eval --input FILE   precision/recall of the rules on labelled JSON Lines, with every miss
    python bot.py train --input FILE --output rules/score_weights.json   fit the relevance score
    python bot.py digest --chat ID --dry-run   print the digest a subscription would get now
    python bot.py health              ask the running bot's /healthz; exit 0 when healthy (Docker HEALTHCHECK)
    python bot.py feeds import FILE.opml       add an OPML file's feeds; feeds export [-o FILE] writes one
    python bot.py backfill            poll every enabled feed once now (due or not); alerts queued for `run`
    python bot.py labels export [-o FILE] [--since 30d]   analysts' 👍/👎 votes as labelled JSON Lines
    python bot.py search QUERY [--days N] [--limit N]     search every stored item ("phrase", -exclude)
    python bot.py export --since 30d [--rule R] [--all] [--format csv|jsonl] [-o FILE]   items and why
    python bot.py store copy --from SRC --to DST [--batch N]   every table into an empty store, verified

The entry point only: the parser and the commands are in cli/ (cli/main.py; cli/__init__.py maps each
command to its module), which calls into service/ (the running bot), which calls the pipeline stages.
"""

from __future__ import annotations

from cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
