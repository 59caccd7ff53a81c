"""Rules: which items matter, and why.

A rule file (``rules/*.yaml``, language v1 — see the README) defines **groups** and **rules**.

Groups
    A group is a named list of aliases; ``kind: entity`` (DPRK, RUSSIA) and ``kind: keywords``
    (MILITARY) behave the same. An alias is written once and matches its inflected forms:

    ``Северная Корея``  plain: Russian words in every case and number, phrase words in agreement
                        (Северной Кореи), words the dictionary does not know by Snowball stem
                        (Мацегора → Мацегорой); English with plural endings and hyphen/space variants
                        (Kim Jong-un = Kim Jong Un; Russia's); Korean words with any particles glued on
                        (북한의, 북한군은; one-syllable Korean words must be written ``=X``).
    ``северокоре*``     prefix: any word starting with it (at least 3 letters before ``*``); may be
                        one word of a phrase (``российск* военн*``).
    ``=КНА``            exact: this word/phrase only, case-insensitive, no inflection.
    ``re: '...'``       RE2 regex over the lowercased field text (``ё`` → ``е``, punctuation kept);
                        at most 500 characters; a leading/trailing ``\b`` is a Unicode word boundary.

    A group's ``exclude`` aliases (same syntax) cancel any hit of that group they overlap
    (``북한강`` the river cancels ``북한``).

Rules
    ``all`` (every term), ``any`` (at least one), ``none`` (no term may match); a term is a group name,
    ``{group, in: title|summary, min: N}``, or nested ``{all: [...]}``, ``{any: [...]}``,
    ``{not: term}``. Optional: ``scope`` (fields searched, default both), ``near: N | sentence``,
    ``min_hits``, ``min_score``, ``priority: instant | digest`` (default digest), ``enabled``, and ``examples:
    {match: [...], no_match: [...]}`` — each a string (the text of the first field in scope) or
    ``{title, summary}``, checked when the file loads. Names: rules ``[a-z0-9_]``, groups start with a
    letter; both unique across all loaded files.

Relevance score
    A file may name a score model with a top-level ``score: FILE.json`` (relative to the file; a bare
    name missing there falls back to the shipped ``rules/`` copy; one file per rule set). Every match
    then carries the item's score 0–1 (:mod:`rules.score`), and a rule's ``min_score: X`` (0 < X < 1)
    drops its match when the score is lower. Misuse (``min_score`` without a model, out of range, a
    second ``score:``, a missing or malformed weights file) is a load error with file and line.

Evaluation order (what wins)
    1. Each field is normalised once (lowercase, ``ё`` → ``е``, NFKC where it matters; every dash and
       punctuation mark separates words).
    2. One multi-pattern scan per field finds every alias hit of every group (plus the ``re:``
       aliases, the only per-pattern scans).
    3. A group's ``exclude`` hits cancel that group's overlapping hits; a hit inside a longer hit of the
       same group is dropped (so ``min`` counts distinct places).
    4. Per rule, only if one of its groups was hit: ``scope`` filters hits by field → ``none``: any
       satisfied term rejects the rule (``none`` wins over everything) → ``all`` and ``any`` (each
       group term counts hits in its ``in`` field, at least ``min`` of them) → ``near``: some window of
       N consecutive words (runs of non-space characters) or one sentence, in one field, holds a hit of
       every ``all`` term and of one ``any`` term (``not`` terms are judged on the whole item; ``min``
       counts over the whole scope) → ``min_hits``: distinct places hit by the positive terms.
    5. With a score model: the item's score, from the evidence of every rule that passed 4 → each
       rule's ``min_score``.
    6. A rule matches when every step passes. Its Match carries the hits of the positive terms that
       satisfied it (within the winning window when ``near`` is set) — the *why* of the alert. An item
       can match several rules; each is reported, in file order. Disabled rules never match.

Invalid rules
    Loading collects every problem — YAML errors, unknown keys, wrong types, bad names, empty groups,
    unknown group references (with a "did you mean"), duplicate names across files, bad aliases
    (empty, > 100 characters, prefix < 3 letters, unsafe or invalid regex), failing examples — each
    with file, line and rule/group path, and raises one :class:`core.errors.RuleError`. Nothing is
    half-loaded: the caller keeps the previous :class:`RuleSet` until a new one loads cleanly.

Matching is a pure function of the compiled RuleSet and the item: no I/O, no shared state, nothing
compiled at match time.
"""

from __future__ import annotations

from rules.engine import RuleSet, Verdict, load_rules, parse_rule_text
from rules.language import Alias, Example, Group, GroupTerm, Rule, RuleFile, Term

__all__ = [
    "Alias",
    "Example",
    "Group",
    "GroupTerm",
    "Rule",
    "RuleFile",
    "RuleSet",
    "Term",
    "Verdict",
    "load_rules",
    "parse_rule_text",
]
