"""Compiled rules: one Aho-Corasick scan per field finds every alias of every group, then rules are
evaluated over the hits.

Why this shape (figures from ``python bench/match.py``, 2 cores, Python 3.11, one core used):

* **One automaton for everything.** Every surface form of every alias of every group (and of every
  group's ``exclude``) is a key of one ``pyahocorasick`` automaton built at load time, so a field is
  scanned once whatever the number of rules: 500 rules over 5,000 aliases cost about 1.5× the default
  rules, where a per-keyword ``re.search`` loop is 40× (default rules) to 250× (500 rules) slower.
* **Scan the lowercased text itself.** The normalised field is ``text.lower().replace("ё", "е")``
  (same length, same offsets — see :mod:`rules.text`) and keys are single words; word boundaries are
  checked on the two neighbouring characters with ``str.isalnum`` (Unicode-aware; prefixes check the
  left edge only). Rebuilding a space-joined token string first (the obvious alternative) costs about
  3.5× the scan itself; the boundary check costs something only where a key was found.
* **Phrases are found through their most selective word** (the longest, exact words first): ``N
  Korea`` through ``korea``, ``Северной Кореи`` through ``северной``. The other words are compared
  token by token on either side, skipping any separators (spaces, hyphens, punctuation, line breaks),
  so ``Kim Jong-un`` and ``Kim Jong Un`` are the same phrase. Anchoring on the first word instead
  made the default rules' scan 2.5× as many automaton hits (``n``, ``ли``, ``но`` are everywhere).
* **Prefix and stem matchers** (``word*``, Korean words, unknown Russian words) are keys too: the key
  is the prefix or the stem; a stem candidate is confirmed by stemming that one token.
* ``re:`` aliases are the only per-pattern scans: one RE2 ``Set`` pass says which regexes occur, and
  only those run to find spans. A regex whose group cannot make a rule match on its own (an ``any``
  or ``none`` group, an ``exclude``) runs only when a rule that still could match needs it.
* **Cheap checks first.** No hit → no work; a rule is looked at only if its first required group was
  hit and all its required groups could be; a rule's plain ``none`` groups veto by one set test; word
  and sentence positions are computed only when a ``near`` rule or the score asks, once per field (word
  counts at the ends of every hit, every sentence start), and shared by every rule and by the score; a
  rule's windows are produced only until one holds its groups; the score comes before the matches, so
  each kept Match is built once with it. On the real dev items this took a matched item from ~280 to
  ~220 µs (its score features 96 → 31 µs; ``python3 bench/match.py --startup --baseline REV``).

Measured throughput (20,000 recombined ru/en/ko items of ~180 characters): ~70,000 items/s with the
default rules when 3% of sentences are on topic (6% of items match; 0.36 × a bare scan of the same
text), ~33,000 items/s when 15% are (30% match; 0.16 × the bare scan — matching items cost
evaluation), ~20,000 items/s with 500 synthetic rules.

Evaluation (also stated in the package docstring): exclude hits cancel overlapping hits of their
group → per rule: scope → ``none`` → ``all``/``any`` (with ``in`` and ``min``) → ``near`` →
``min_hits`` → with a score model, the item's relevance score (:mod:`rules.score`, from the evidence
of every rule that passed so far, computed only for items that matched) → each rule's ``min_score``.
"""

from __future__ import annotations

import functools
import importlib
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from types import MappingProxyType
from typing import Any

import ahocorasick

from core.errors import Problem, RuleError
from core.models import Field, Hit, Item, Match, cap_text
from rules.language import (
    FIELDS,
    AllTerm,
    AnyTerm,
    CompiledRegex,
    GroupTerm,
    NotTerm,
    Rule,
    RuleFile,
    Term,
    check_references,
    compile_regex,
    group_index,
    iter_group_terms,
    parse_file,
)
from rules.language import Group as Group
from rules.morph import Variant, stem
from rules.score import Evidence, ScoreFileError, Scorer, load_scorer
from rules.score import features as score_features
from rules.text import TOKEN_RE, NormText, normalize, sentence_starts, word_counts

# A raw hit: (group id, is exclude, field index, start, end) in normalised-text offsets.
_RawHit = tuple[int, bool, int, int, int]
# An automaton entry for a non-trivial matcher (see _Scanner.__init__).
_Entry = tuple[Any, ...]
# A kept hit: (field index, start, end, group id).
_Pos = tuple[int, int, int, int]
# A compiled term: ("g", gid, field index or -1, min) | ("all"/"any", terms) | ("not", term).
_CTerm = tuple[Any, ...]

_FIELD_INDEX: dict[str, int] = {f: i for i, f in enumerate(FIELDS)}


# --- the scanner -----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Slot:
    """Everything one key does for one (group, exclude, matcher kind, stem)."""

    single: bool = False
    # (words before, words after) → the exact words around the anchor, in text order
    exact_tails: dict[tuple[int, int], set[tuple[str, ...]]] = field(default_factory=dict)
    other_tails: list[tuple[Variant, Variant]] = field(default_factory=list)  # (before, after) matchers


def _anchor(variant: Variant) -> int:
    """Which word of a phrase is the automaton key: the most selective one (longest, exact first).

    ``N Korea`` is found through ``korea``, not through ``n`` (which occurs in almost every English
    word); the words around the anchor are then compared in both directions.
    """
    return max(range(len(variant)), key=lambda i: (len(variant[i][1]) - (variant[i][0] != "e") * 0.5, -i))


class _Scanner:
    """The compiled alias matcher for a list of groups (pure after construction)."""

    def __init__(self, groups: Sequence[Group], eager_gids: frozenset[int] = frozenset()) -> None:
        slots: dict[str, dict[tuple[int, bool, str, str], _Slot]] = {}
        self.regexes: list[tuple[int, bool, CompiledRegex]] = []
        for gid, group in enumerate(groups):
            for excl, aliases in ((False, group.aliases), (True, group.exclude)):
                for alias in aliases:
                    if alias.kind == "regex":
                        self.regexes.append((gid, excl, compile_regex(alias.text)))
                        continue
                    for variant in alias.variants:
                        ai = _anchor(variant)
                        kind, value = variant[ai]
                        slot = slots.setdefault(value, {}).setdefault(
                            (gid, excl, kind, value if kind == "s" else ""), _Slot()
                        )
                        before, after = variant[:ai], variant[ai + 1 :]
                        if not before and not after:
                            slot.single = True
                        elif all(k == "e" for k, _ in before + after):
                            words = tuple(v for _, v in before + after)
                            slot.exact_tails.setdefault((len(before), len(after)), set()).add(words)
                        else:
                            slot.other_tails.append((before, after))
        self.n_keys = len(slots)
        self.automaton: Any = ahocorasick.Automaton()
        for key, by_entry in slots.items():
            # The common case — a whole word, no phrase around it — gets its own short list.
            singles: list[tuple[int, bool]] = []  # whole word
            prefixes: list[tuple[int, bool]] = []  # word start (Korean words, word*)
            entries: list[_Entry] = []
            for (gid, excl, kind, stem_value), slot in by_entry.items():
                if kind in "ep" and slot.single:
                    (singles if kind == "e" else prefixes).append((gid, excl))
                    if not slot.exact_tails and not slot.other_tails:
                        continue
                exact_tails = tuple((n, frozenset(s)) for n, s in sorted(slot.exact_tails.items()))
                other_tails = tuple(slot.other_tails)
                sizes = [n for n, _ in exact_tails] + [(len(b), len(a)) for b, a in other_tails]
                max_before = max([b for b, _ in sizes] + [0])
                max_after = max([a for _, a in sizes] + [0])
                single = slot.single and kind == "s"  # the others are in ``singles``/``prefixes``
                edges = _edge_chars(single, exact_tails, other_tails)
                entries.append(
                    (gid, excl, kind, stem_value, single, exact_tails, other_tails, max_before, max_after, *edges)
                )
            self.automaton.add_word(key, (len(key), tuple(singles), tuple(prefixes), tuple(entries)))
        if slots:
            self.automaton.make_automaton()
        # ``re:`` aliases: the regexes of groups in ``eager_gids`` run on every field; the others only
        # when a rule that could still match needs their group (see RuleSet.match_text).
        self.eager = _RegexSet([r for r in self.regexes if r[0] in eager_gids and not r[1]])
        self.lazy = _RegexSet([r for r in self.regexes if not (r[0] in eager_gids and not r[1])])
        self.lazy_gids = frozenset(r[0] for r in self.lazy.regexes)

    def scan(self, low: str, fi: int, out: list[_RawHit]) -> None:
        """Append every alias hit in one normalised field to ``out`` (of the regexes, the eager ones)."""
        if self.n_keys:
            self._scan_keys(low, fi, out)
        if self.eager.regexes:
            self.eager.scan(low, fi, out)

    def scan_lazy(self, low: str, fi: int, out: list[_RawHit]) -> None:
        """Append the hits of the lazy regexes."""
        if self.lazy.regexes:
            self.lazy.scan(low, fi, out)

    def _scan_keys(self, low: str, fi: int, out: list[_RawHit]) -> None:
        n = len(low)
        append = out.append
        for end, (klen, singles, prefixes, entries) in self.automaton.iter(low):
            s = end - klen + 1
            if s and low[s - 1].isalnum():
                continue  # not at a word start
            e0 = end + 1
            if singles and (e0 == n or not low[e0].isalnum()):
                for gid, excl in singles:
                    append((gid, excl, fi, s, e0))
            if prefixes:
                te = e0
                while te < n and low[te].isalnum():
                    te += 1
                for gid, excl in prefixes:
                    append((gid, excl, fi, s, te))
            if entries:
                _entries(low, fi, s, e0, entries, out)


def _edge_chars(
    single: bool,
    exact_tails: tuple[tuple[tuple[int, int], frozenset[tuple[str, ...]]], ...],
    other_tails: tuple[Any, ...],
) -> tuple[frozenset[str] | None, frozenset[str] | None]:
    """For an entry that only matches whole phrases of exact words: the characters the word just before
    the anchor can end with, and the word just after it can start with (None: no such check). ``korea``
    is the key of ``N Korea`` and follows ``north`` far more often: one character rejects it (issue 16)."""
    if single or other_tails or not exact_tails:
        return None, None
    before = [words[b - 1][-1] for (b, _), tails in exact_tails if b for words in tails]
    after = [words[b][0] for (b, a), tails in exact_tails if a for words in tails]
    everyone_before = all(b for (b, _), _ in exact_tails)
    everyone_after = all(a for (_, a), _ in exact_tails)
    return (frozenset(before) if everyone_before else None, frozenset(after) if everyone_after else None)


def _entries(low: str, fi: int, s: int, e0: int, entries: tuple[_Entry, ...], out: list[_RawHit]) -> None:
    """Prefix, stem and phrase matchers whose key was found at ``[s, e0)``."""
    n = len(low)
    at_word_end = e0 == n or not low[e0].isalnum()
    word_end = -1
    for gid, excl, kind, stem_value, single, exact_tails, other_tails, nb, na, ends_before, starts_after in entries:
        if kind == "e":
            if not at_word_end:
                continue
            te = e0
        else:
            if word_end < 0:
                word_end = e0
                while word_end < n and low[word_end].isalnum():
                    word_end += 1
            te = word_end
            if kind == "s" and stem(low[s:te]) != stem_value:
                continue
        if ends_before is not None:  # the word before must end with one of these (words are isalnum runs)
            j = s
            while j > 0 and not low[j - 1].isalnum():
                j -= 1
            if j == 0 or low[j - 1] not in ends_before:
                continue
        if starts_after is not None:
            j = te
            while j < n and not low[j].isalnum():
                j += 1
            if j == n or low[j] not in starts_after:
                continue
        if single:
            out.append((gid, excl, fi, s, te))
        if nb or na:
            prv = _prev_tokens(low, s, nb) if nb else []
            nxt = _next_tokens(low, te, na) if na else []
            for (b, a), tails in exact_tails:
                if len(prv) >= b and len(nxt) >= a:
                    words = tuple(t for t, _, _ in prv[len(prv) - b :]) + tuple(t for t, _, _ in nxt[:a])
                    if words in tails:
                        out.append((gid, excl, fi, prv[-b][1] if b else s, nxt[a - 1][2] if a else te))
            for before, after in other_tails:
                span = _match_around(before, after, prv, nxt)
                if span is not None:
                    out.append((gid, excl, fi, span[0] if before else s, span[1] if after else te))


MAX_PREFILTER_LITERALS = 4


def required_literals(pattern: str) -> frozenset[str] | None:
    """Lowercase literal strings one of which occurs in every text ``pattern`` matches, or None when no
    such set is known (a class, a dot, an optional part only…). The RE2 pass costs ~2.6 µs a field
    against ~0.18 µs for a substring check (issue 16), so a field without any of these skips it."""
    # Python's own regex parser (no public name, no stubs): RE2's syntax agrees on everything read here.
    sre: Any = importlib.import_module("re._parser")

    try:
        tree = sre.parse(pattern)
    except Exception:  # syntax Python does not know (\pL…): no pre-filter, RE2 always runs
        return None

    def sequence(items: Any) -> frozenset[str] | None:
        best: frozenset[str] | None = None
        run: list[str] = []

        def consider(found: frozenset[str] | None) -> None:
            nonlocal best
            if found and (best is None or min(map(len, found)) > min(map(len, best))):
                best = found

        for op, arg in [*list(items), (None, None)]:
            if op is sre.LITERAL:
                run.append(chr(arg).lower())
                continue
            consider(frozenset(["".join(run)]) if run else None)
            run = []
            if op is sre.SUBPATTERN:
                consider(sequence(arg[-1]))
            elif op is sre.BRANCH:
                branches = [sequence(b) for b in arg[1]]
                if all(branches):
                    consider(frozenset().union(*branches))  # type: ignore[arg-type]
            elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT) and arg[0] >= 1:
                consider(sequence(arg[2]))
        return best

    return sequence(tree)


class _RegexSet:
    """``re:`` aliases: one RE2 Set pass says which occur; only those are run for their spans. A field
    containing none of the regexes' required literals (:func:`required_literals`) skips the pass."""

    def __init__(self, regexes: Sequence[tuple[int, bool, CompiledRegex]]) -> None:
        self.regexes = tuple(regexes)
        self.set: Any = None
        found = [required_literals(rx.regex.pattern) for _, _, rx in self.regexes]
        literals = tuple(sorted(frozenset().union(*found))) if all(found) else ()  # type: ignore[arg-type]
        # each literal is a scan of the field: 2 cost 1.1 µs against RE2's 4.2, 7 no less than RE2 (bench/match.py)
        self.literals: tuple[str, ...] | None = literals if 0 < len(literals) <= MAX_PREFILTER_LITERALS else None
        if self.regexes:
            import re2

            options = re2.Options()
            options.case_sensitive = False
            options.log_errors = False
            self.set = re2.Set.SearchSet(options)
            for _, _, rx in self.regexes:
                self.set.Add(rx.regex.pattern)
            self.set.Compile()

    def scan(self, low: str, fi: int, out: list[_RawHit]) -> None:
        if self.literals is not None and not any(literal in low for literal in self.literals):
            return
        found = self.set.Match(low)
        if not found:
            return
        n = len(low)
        for index in found:
            gid, excl, rx = self.regexes[index]
            for m in rx.regex.finditer(low):
                s, e = m.span()
                if e <= s:
                    continue
                if rx.word_start and s and low[s - 1].isalnum() and low[s].isalnum():
                    continue
                if rx.word_end and e < n and low[e].isalnum() and low[e - 1].isalnum():
                    continue
                out.append((gid, excl, fi, s, e))


_Token = tuple[str, int, int]  # text, start, end


def _next_tokens(low: str, pos: int, count: int) -> list[_Token]:
    """Up to ``count`` tokens after ``pos``, whatever separates them."""
    if count == 1:
        m = TOKEN_RE.search(low, pos)
        return [(m.group(), m.start(), m.end())] if m else []
    out: list[_Token] = []
    for m in TOKEN_RE.finditer(low, pos):
        out.append((m.group(), m.start(), m.end()))
        if len(out) == count:
            break
    return out


def _prev_tokens(low: str, pos: int, count: int) -> list[_Token]:
    """Up to ``count`` tokens before ``pos``, in text order."""
    out: list[_Token] = []
    j = pos
    while len(out) < count:
        while j > 0 and not low[j - 1].isalnum():
            j -= 1
        if j == 0:
            break
        k = j
        while k > 0 and low[k - 1].isalnum():
            k -= 1
        out.append((low[k:j], k, j))
        j = k
    out.reverse()
    return out


def _token_ok(matcher: tuple[str, str], tok: str) -> bool:
    kind, value = matcher
    if kind == "e":
        return tok == value
    return tok.startswith(value) and (kind == "p" or stem(tok) == value)


def _match_around(
    before: Variant, after: Variant, prv: Sequence[_Token], nxt: Sequence[_Token]
) -> tuple[int, int] | None:
    """(start, end) of a phrase whose anchor matched, if the words around it match too."""
    if len(prv) < len(before) or len(nxt) < len(after):
        return None
    lead = prv[len(prv) - len(before) :]
    if not all(_token_ok(m, t[0]) for m, t in zip(before, lead, strict=True)):
        return None
    if not all(_token_ok(m, t[0]) for m, t in zip(after, nxt, strict=False)):
        return None
    return (lead[0][1] if before else -1, nxt[len(after) - 1][2] if after else -1)


# --- per-item state --------------------------------------------------------------------------------


class _Item:
    """One item's normalised fields and group hits; word and sentence positions only if a rule asks."""

    __slots__ = ("_hit_objects", "_sentences", "_words", "hits", "norms")

    def __init__(self, norms: tuple[NormText, NormText], hits: dict[int, list[_Pos]]) -> None:
        self.norms = norms
        self.hits = hits
        self._words: dict[int, dict[int, int]] = {}
        self._sentences: dict[int, list[int]] = {}
        self._hit_objects: dict[_Pos, Hit] = {}

    def word_span(self, h: _Pos) -> tuple[int, int]:
        """Indexes of the first and last word of a hit in its field (words as :func:`word_counts`)."""
        counts = self.words(h[0])
        return counts[h[1] + 1] - 1, counts[h[2]] - 1

    def words(self, fi: int) -> dict[int, int]:
        """Word counts (:func:`word_counts`) at both ends of every hit in field ``fi``: one pass per field,
        shared by every ``near: N`` rule and by the score (counts do not depend on the other positions)."""
        counts = self._words.get(fi)
        if counts is None:
            wanted = [p for hs in self.hits.values() for x in hs if x[0] == fi for p in (x[1] + 1, x[2])]
            counts = self._words[fi] = word_counts(self.norms[fi].text, wanted)
        return counts

    def starts(self, fi: int) -> list[int]:
        """:func:`sentence_starts` of field ``fi``, once per field: every ``near: sentence`` rule and the
        score read them."""
        starts = self._sentences.get(fi)
        if starts is None:
            starts = self._sentences[fi] = sentence_starts(self.norms[fi])
        return starts

    def sentence(self, h: _Pos) -> int:
        """Sentence number of a hit, or -1 if it spans a sentence break."""
        starts = self.starts(h[0])
        a = bisect_right(starts, h[1])
        return a if a == bisect_right(starts, h[2] - 1) else -1

    def hit(self, h: _Pos, names: Sequence[str]) -> Hit:
        obj = self._hit_objects.get(h)
        if obj is None:
            norm = self.norms[h[0]]
            a, b = norm.span(h[1], h[2])
            fld: Field = FIELDS[h[0]]
            obj = self._hit_objects[h] = Hit(names[h[3]], fld, a, b, norm.original[a:b])
        return obj


def _apply_excludes_and_dedupe(raw: list[_RawHit]) -> dict[int, list[_Pos]]:
    if len(raw) == 1:
        gid, excl, fi, s, e = raw[0]
        return {} if excl else {gid: [(fi, s, e, gid)]}
    hits: dict[int, list[_Pos]] = {}
    excludes: dict[int, list[_Pos]] = {}
    for gid, excl, fi, s, e in raw:
        (excludes if excl else hits).setdefault(gid, []).append((fi, s, e, gid))
    for gid, ex in excludes.items():
        hs = hits.get(gid)
        if hs:
            kept = [h for h in hs if not any(x[0] == h[0] and x[1] < h[2] and h[1] < x[2] for x in ex)]
            if kept:
                hits[gid] = kept
            else:
                del hits[gid]
    for gid, hs in hits.items():
        if len(hs) > 1:
            hs.sort(key=lambda h: (h[0], h[1], -h[2]))
            kept = [hs[0]]
            for h in hs[1:]:
                last = kept[-1]
                if h[0] == last[0] and h[2] <= last[2]:
                    continue  # inside (or equal to) a longer hit of the same group
                kept.append(h)
            hits[gid] = kept
    return hits


# --- rules -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether one rule matched one text, the hits that made it match, and why not if it did not."""

    rule: str
    matched: bool
    hits: tuple[Hit, ...]
    reason: str = ""
    score: float | None = None

    def why_text(self) -> str:
        return Match(self.rule, "digest", self.hits).why_text()


_Window = Callable[[_Pos], bool]


class _CompiledRule:
    """A rule in the engine's terms: group ids, field indexes, and cheap pre-checks."""

    __slots__ = (
        "all", "any", "any_gids", "full_scope", "index", "min_hits", "near", "none", "none_gids", "none_terms",
        "positive", "referenced", "required", "rule", "scope", "simple", "simple_any",
    )  # fmt: skip

    def __init__(self, index: int, rule: Rule, gids: Mapping[str, int]) -> None:
        self.index = index
        self.rule = rule
        self.scope = frozenset(_FIELD_INDEX[f] for f in rule.scope)
        self.full_scope = len(self.scope) == len(FIELDS)
        self.all = tuple(_compile_term(t, gids) for t in rule.all)
        self.any = tuple(_compile_term(t, gids) for t in rule.any)
        self.none = tuple(_compile_term(t, gids) for t in rule.none)
        self.near = rule.near
        self.min_hits = rule.min_hits
        self.positive = frozenset(gids[t.group] for t, pos in iter_group_terms((*rule.all, *rule.any)) if pos)
        self.referenced = frozenset(gids[t.group] for t, _ in iter_group_terms((*rule.all, *rule.any, *rule.none)))
        # Pre-checks on the set of groups hit, before any real evaluation.
        self.required = frozenset(gids[t.group] for t in rule.all if isinstance(t, GroupTerm))
        self.any_gids = (
            frozenset(gids[t.group] for t in rule.any if isinstance(t, GroupTerm))
            if rule.any and all(isinstance(t, GroupTerm) for t in rule.any)
            else frozenset()
        )

        # "Simple" rules — every all/any term a bare group name — take fast paths below.
        self.simple = all(
            isinstance(t, GroupTerm) and t.in_field is None and t.min == 1 for t in (*rule.all, *rule.any)
        )
        self.simple_any = self.any_gids if self.simple else frozenset()
        # ``none`` groups that veto by being hit at all (no ``in``, no ``min``, every field in scope): one
        # set test for all of them; the other ``none`` terms are evaluated.
        self.none_gids = frozenset(
            t[1] for t in self.none if t[0] == "g" and t[2] < 0 and t[3] <= 1 and self.full_scope
        )
        self.none_terms = tuple(t for t in self.none if not (t[0] == "g" and t[1] in self.none_gids))

    def index_groups(self) -> frozenset[int]:
        """Groups whose hit makes this rule worth evaluating (one required group is enough)."""
        if self.required:
            return frozenset({min(self.required)})
        return self.positive


def _compile_term(term: Term, gids: Mapping[str, int]) -> _CTerm:
    if isinstance(term, GroupTerm):
        return ("g", gids[term.group], _FIELD_INDEX[term.in_field] if term.in_field else -1, term.min)
    if isinstance(term, AllTerm):
        return ("all", tuple(_compile_term(t, gids) for t in term.terms))
    if isinstance(term, AnyTerm):
        return ("any", tuple(_compile_term(t, gids) for t in term.terms))
    assert isinstance(term, NotTerm)
    return ("not", _compile_term(term.term, gids))


def _term_hits(
    term: _CTerm, hits: dict[int, list[_Pos]], cr: _CompiledRule, window: _Window | None
) -> list[_Pos] | None:
    """The hits that satisfy ``term`` (``[]`` for a satisfied ``not``), or None if it fails."""
    tag = term[0]
    if tag == "g":
        hs = hits.get(term[1])
        if not hs:
            return None
        fsel = term[2]
        if fsel >= 0:
            hs = [h for h in hs if h[0] == fsel]
        elif not cr.full_scope:
            hs = [h for h in hs if h[0] in cr.scope]
        if window is not None:
            hs = [h for h in hs if window(h)]
            return hs or None
        return hs if len(hs) >= term[3] else None
    if tag == "all":
        acc: list[_Pos] = []
        for t in term[1]:
            r = _term_hits(t, hits, cr, window)
            if r is None:
                return None
            acc.extend(r)
        return acc
    if tag == "any":
        found: list[_Pos] | None = None
        for t in term[1]:
            r = _term_hits(t, hits, cr, window)
            if r is not None:
                found = (found or []) + r
        return found
    # "not" is about the whole item (in scope), never about a window.
    return [] if _term_hits(term[1], hits, cr, None) is None else None


def _positive_hits(cr: _CompiledRule, hits: dict[int, list[_Pos]], window: _Window | None) -> list[_Pos] | None:
    if cr.simple and window is None and cr.full_scope:
        acc: list[_Pos] = []
        for gid in cr.required:
            hs = hits.get(gid)
            if not hs:
                return None
            acc.extend(hs)
        if cr.simple_any:
            before = len(acc)
            for gid in cr.simple_any:
                hs = hits.get(gid)
                if hs:
                    acc.extend(hs)
            if len(acc) == before:
                return None
        return acc
    acc = []
    for t in cr.all:
        r = _term_hits(t, hits, cr, window)
        if r is None:
            return None
        acc.extend(r)
    if cr.any:
        found = False
        for t in cr.any:
            r = _term_hits(t, hits, cr, window)
            if r is not None:
                found = True
                acc.extend(r)
        if not found:
            return None
    return acc


def _near_hits(cr: _CompiledRule, item: _Item, found: list[_Pos]) -> list[_Pos] | None:
    """Hits of the first window (N words, or one sentence) in one field that satisfies the rule.

    Windows start at a hit (an optimal window always can), so only ``len(hits)`` windows are tried.
    Simple rules compare the set of groups in each window; others re-evaluate their terms in it.
    """
    for fi in sorted({h[0] for h in found}):
        in_field = sorted({h for h in found if h[0] == fi})
        if cr.simple:
            windows = (
                _sentence_windows(item, in_field)
                if cr.near == "sentence"
                else _word_windows(item, in_field, int(cr.near or 0))
            )
            for window in windows:
                groups = {h[3] for h in window}
                if cr.required <= groups and (not cr.simple_any or not groups.isdisjoint(cr.simple_any)):
                    return window
            continue
        if cr.near == "sentence":
            for sid in sorted({item.sentence(h) for h in in_field} - {-1}):

                def in_sentence(h: _Pos, fi: int = fi, sid: int = sid) -> bool:
                    return h[0] == fi and item.sentence(h) == sid

                hits = _positive_hits(cr, item.hits, in_sentence)
                if hits is not None:
                    return hits
        else:
            size = int(cr.near or 0)
            for lo in sorted({item.word_span(h)[0] for h in in_field}):

                def in_window(h: _Pos, fi: int = fi, lo: int = lo, size: int = size) -> bool:
                    if h[0] != fi:
                        return False
                    a, b = item.word_span(h)
                    return lo <= a and b < lo + size

                hits = _positive_hits(cr, item.hits, in_window)
                if hits is not None:
                    return hits
    return None


def _sentence_windows(item: _Item, hits: list[_Pos]) -> Iterator[list[_Pos]]:
    """Hits (sorted, one field) grouped by sentence, in order, as far as they are asked for. A sentence
    ends between two hits when one of the field's sentence starts lies in the gap: the field's starts are
    computed once (what :func:`rules.text.has_sentence_break` says of each gap, which each rule asked again)."""
    starts = item.starts(hits[0][0])
    window = [hits[0]]
    reach = hits[0][2]
    for h in hits[1:]:
        if reach < h[1] and bisect_right(starts, reach) != bisect_right(starts, h[1]):
            yield window
            window = [h]
        else:
            window.append(h)
        reach = max(reach, h[2])
    yield window


def _word_windows(item: _Item, hits: list[_Pos], size: int) -> Iterator[list[_Pos]]:
    """For each hit in word order, the hits inside the ``size`` words starting at it, as far as asked for."""
    spans = sorted((item.word_span(h), h) for h in hits)
    n = len(spans)
    for i in range(n):
        limit = spans[i][0][0] + size
        window = []
        for j in range(i, n):
            (a, b), h = spans[j]
            if a >= limit:
                break
            if b < limit:
                window.append(h)
        yield window


def _evaluate(cr: _CompiledRule, item: _Item, names: Sequence[str], explain: bool) -> tuple[list[_Pos] | None, str]:
    """Hits that make ``cr`` match ``item`` (sorted, distinct), or None and (if asked) the reason."""
    hits = item.hits
    if cr.none_gids and not cr.none_gids.isdisjoint(hits.keys()):
        if not explain:
            return None, ""
        vetoed = next(t for t in cr.none if _term_hits(t, hits, cr, None) is not None)
        return None, f"none: {_describe(vetoed, names)} matched"
    for t in cr.none_terms:
        if _term_hits(t, hits, cr, None) is not None:
            return None, (f"none: {_describe(t, names)} matched" if explain else "")
    found = _positive_hits(cr, hits, None)
    if found is None:
        return None, (_explain_missing(cr, hits, names) if explain else "")
    if cr.near is not None:
        found = _near_hits(cr, item, found)
        if found is None:
            what = "in one sentence" if cr.near == "sentence" else f"within {cr.near} words"
            return None, (f"near: the terms are not {what} of each other" if explain else "")
    distinct = sorted(set(found))
    if cr.min_hits > 1 and len({h[:3] for h in distinct}) < cr.min_hits:
        n = len({h[:3] for h in distinct})
        return None, (f"min_hits: {n} distinct hits, {cr.min_hits} needed" if explain else "")
    return distinct, ""


def _describe(term: _CTerm, names: Sequence[str]) -> str:
    tag = term[0]
    if tag == "g":
        extra = []
        if term[2] >= 0:
            extra.append(f"in {FIELDS[term[2]]}")
        if term[3] > 1:
            extra.append(f"min {term[3]}")
        return names[term[1]] + (f" ({', '.join(extra)})" if extra else "")
    if tag == "not":
        return f"not {_describe(term[1], names)}"
    return f"{tag}[{', '.join(_describe(t, names) for t in term[1])}]"


def _explain_missing(cr: _CompiledRule, hits: dict[int, list[_Pos]], names: Sequence[str]) -> str:
    missing_all = [_describe(t, names) for t in cr.all if _term_hits(t, hits, cr, None) is None]
    if missing_all:
        return "all: no " + ", no ".join(missing_all)
    return "any: none of " + ", ".join(_describe(t, names) for t in cr.any)


# --- the public rule set ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RuleSet:
    """Loaded, validated and compiled rules. Immutable; :meth:`match` is a pure function.

    Build one with :func:`load_rules` or :func:`parse_rule_text`; an invalid file raises instead, so
    the caller keeps its previous RuleSet.
    """

    rules: tuple[Rule, ...]
    groups: Mapping[str, Group]
    files: tuple[Path, ...]
    sources: tuple[RuleFile, ...] = field(repr=False)
    _scanner: _Scanner = field(repr=False)
    _group_names: tuple[str, ...] = field(repr=False)
    _compiled: tuple[_CompiledRule, ...] = field(repr=False)
    _by_group: Mapping[int, tuple[int, ...]] = field(repr=False)
    _by_name: Mapping[str, _CompiledRule] = field(repr=False)
    scorer: Scorer | None = field(default=None, repr=False)
    _entity_gids: frozenset[int] = field(default=frozenset(), repr=False)

    @classmethod
    def compile(cls, sources: Sequence[RuleFile], scorer: Scorer | None = None) -> RuleSet:
        """Compile already-validated files (use :func:`load_rules` / :func:`parse_rule_text`)."""
        groups = dict(group_index(sources))
        names = tuple(groups)
        gids = {name: i for i, name in enumerate(names)}
        rules = tuple(r for rf in sources for r in rf.rules)
        compiled = tuple(_CompiledRule(i, r, gids) for i, r in enumerate(rules))
        by_group: dict[int, list[int]] = {}
        for cr in compiled:
            if cr.rule.enabled:
                for gid in cr.index_groups():
                    by_group.setdefault(gid, []).append(cr.index)
        scanner = _Scanner([groups[n] for n in names], eager_gids=frozenset(by_group))
        return cls(
            rules=rules,
            groups=MappingProxyType(groups),
            files=tuple(Path(rf.file) for rf in sources),
            sources=tuple(sources),
            _scanner=scanner,
            _group_names=names,
            _compiled=compiled,
            _by_group=MappingProxyType({g: tuple(ix) for g, ix in by_group.items()}),
            _by_name=MappingProxyType({cr.rule.name: cr for cr in compiled}),
            scorer=scorer,
            _entity_gids=frozenset(i for i, n in enumerate(names) if groups[n].kind == "entity"),
        )

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles as its sources and scorer, compiled again on load (the automaton and RE2 sets do not
        pickle): how a process worker gets the rules (core/workers.py, once per worker and rule set)."""
        return (RuleSet.compile, (self.sources, self.scorer))

    # matching

    def match(self, item: Item) -> list[Match]:
        """Every enabled rule that matches the item, in rule order, each with its hits (the why); a rule
        with a ``source:`` condition only if the item's feed labels meet it."""
        found = self.match_text(item.title, item.summary)
        return [m for m in found if (s := self._by_name[m.rule].rule.source) is None or s.allows(item.labels)]

    def match_text(self, title: str, summary: str = "") -> list[Match]:
        """:meth:`match` for a bare title and summary.

        The cheap checks come first: no hit → nothing; a rule is looked at only if one of its groups
        was hit and every group it requires could be; lazy regexes run only if such a rule needs them.
        Each field is read up to :data:`core.models.MAX_TEXT` characters (:func:`core.models.cap_text`).
        """
        nt = normalize(cap_text(title))
        ns = normalize(cap_text(summary))
        scanner = self._scanner
        raw: list[_RawHit] = []
        if nt.text:
            scanner.scan(nt.text, 0, raw)
        if ns.text:
            scanner.scan(ns.text, 1, raw)
        if not raw:
            return []
        by_group = self._by_group
        present = {r[0] for r in raw if not r[1]}
        candidates: set[int] = set()
        for gid in present:
            ix = by_group.get(gid)
            if ix:
                candidates.update(ix)
        if not candidates:
            return []
        lazy = scanner.lazy_gids
        possible = present | lazy if lazy else present
        passing = [
            cr
            for cr in (self._compiled[i] for i in sorted(candidates))
            if cr.required <= possible and (not cr.any_gids or not possible.isdisjoint(cr.any_gids))
        ]
        if not passing:
            return []
        if lazy and any(not cr.referenced.isdisjoint(lazy) for cr in passing):
            if nt.text:
                scanner.scan_lazy(nt.text, 0, raw)
            if ns.text:
                scanner.scan_lazy(ns.text, 1, raw)
        hits = _apply_excludes_and_dedupe(raw)
        if not hits:
            return []
        it = _Item((nt, ns), hits)
        keys = hits.keys()
        names = self._group_names
        matched: list[tuple[_CompiledRule, list[_Pos]]] = []
        for cr in passing:
            if (cr.required and not keys >= cr.required) or (cr.any_gids and keys.isdisjoint(cr.any_gids)):
                continue
            found, _ = _evaluate(cr, it, names, False)
            if found is not None:
                matched.append((cr, found))
        if not matched:
            return []
        score: float | None = None
        if self.scorer is not None:
            # the score first, so each kept Match is built once, with it (and dropped ones not at all)
            feats = score_features(self._evidence(it, [(cr.rule.name, found) for cr, found in matched]))
            if self.scorer.embedding is not None:
                feats = self.scorer.item_features(feats, title, summary)
            score = round(self.scorer.score(feats), 3)
        hit, made = it.hit, it._hit_objects  # a hit in several matches is one Hit object
        return [
            Match(cr.rule.name, cr.rule.priority, tuple([made.get(h) or hit(h, names) for h in found]), score)
            for cr, found in matched
            if score is None or (ms := cr.rule.min_score) is None or score >= ms
        ]

    def features(self, title: str, summary: str = "") -> tuple[list[Match], dict[str, float] | None]:
        """Every match before ``min_score`` is applied, and the score's features (None: no match).

        For ``bot.py train`` and ``bot.py eval``; the matches carry no score.
        """
        it = self._item(title, summary)
        if it is None:
            return [], None
        names = self._group_names
        out: list[Match] = []
        evidence: list[tuple[str, list[_Pos]]] = []
        for cr in self._compiled:
            if not cr.rule.enabled:
                continue
            found, _ = _evaluate(cr, it, names, False)
            if found is not None:
                out.append(Match(cr.rule.name, cr.rule.priority, tuple(it.hit(h, names) for h in found)))
                evidence.append((cr.rule.name, found))
        return out, (score_features(self._evidence(it, evidence)) if out else None)

    def _evidence(self, it: _Item, matched: Sequence[tuple[str, list[_Pos]]]) -> Evidence:
        fields = {h[0] for _, found in matched for h in found}
        return Evidence(
            it.norms,
            tuple(chain.from_iterable(it.hits.values())),
            tuple(matched),
            self._group_names,
            self._entity_gids,
            (it.words(0) if 0 in fields else None, it.words(1) if 1 in fields else None),
            (it.starts(0) if 0 in fields else None, it.starts(1) if 1 in fields else None),
        )

    def rule(self, name: str) -> Rule | None:
        """The rule called ``name``, or None."""
        cr = self._by_name.get(name)
        return cr.rule if cr else None

    def evaluate(self, rule: str | Rule, title: str, summary: str = "") -> Verdict:
        """One rule against one text, enabled or not, with the reason when it does not match.

        For examples, back-tests and "why didn't this match?" questions; not the hot path.
        Raises KeyError for an unknown rule name.
        """
        name = rule if isinstance(rule, str) else rule.name
        cr = self._by_name.get(name)
        if cr is None:
            raise KeyError(name)
        it = self._item(title, summary) or _Item((normalize(cap_text(title)), normalize(cap_text(summary))), {})
        found, reason = _evaluate(cr, it, self._group_names, True)
        if found is None:
            seen = Match(name, cr.rule.priority, self._all_hits(it)).why_text()
            return Verdict(name, False, (), f"{reason}; found {seen}" if seen else f"{reason}; no group found")
        hits = tuple(it.hit(h, self._group_names) for h in found)
        if self.scorer is not None:
            # The score is the item's (all its matching rules' evidence), as in match_text.
            _, feats = self.features(title, summary)
            score = round(self.scorer.score(self.scorer.item_features(feats or {}, title, summary)), 3)
            if cr.rule.min_score is not None and score < cr.rule.min_score:
                why = Match(name, cr.rule.priority, hits).why_text()
                return Verdict(name, False, (), f"min_score: score {score:.2f} < {cr.rule.min_score:g}; found {why}")
            return Verdict(name, True, hits, score=score)
        return Verdict(name, True, hits)

    def scan(self, title: str, summary: str = "") -> tuple[Hit, ...]:
        """Every group hit in a text, after exclusions (what the rules see), in text order."""
        it = self._item(title, summary)
        return self._all_hits(it) if it is not None else ()

    def hits_any_group(self, title: str, summary: str = "") -> bool:
        """Whether the text hits any group an enabled rule looks for (after exclusions): the cheap first scan
        of :meth:`match_text` alone, for deciding whether an item is worth more work (fetching its
        article). Lazy regexes are not run; a group reached only through one is not seen here."""
        raw: list[_RawHit] = []
        for fi, text in enumerate((title, summary)):
            norm = normalize(cap_text(text))
            if norm.text:
                self._scanner.scan(norm.text, fi, raw)
        if not raw:
            return False
        hit = _apply_excludes_and_dedupe(raw).keys()
        return any(cr.rule.enabled and not hit.isdisjoint(cr.positive) for cr in self._compiled)

    # internals

    def _item(self, title: str, summary: str) -> _Item | None:
        """Both fields normalised and fully scanned (every regex too); None when nothing was hit."""
        norms = (normalize(cap_text(title)), normalize(cap_text(summary)))
        raw: list[_RawHit] = []
        for fi, norm in enumerate(norms):
            if norm.text:
                self._scanner.scan(norm.text, fi, raw)
                self._scanner.scan_lazy(norm.text, fi, raw)
        hits = _apply_excludes_and_dedupe(raw) if raw else {}
        return _Item(norms, hits) if hits else None

    def _all_hits(self, it: _Item | None) -> tuple[Hit, ...]:
        if it is None:
            return ()
        ordered = sorted(h for hs in it.hits.values() for h in hs)
        return tuple(it.hit(h, self._group_names) for h in ordered)


# --- loading ---------------------------------------------------------------------------------------


def load_rules(paths: Sequence[Path], *, with_score: bool = True, cache: Path | None = None) -> RuleSet:
    """Read, validate and compile rule files; raises :class:`RuleError` listing every problem.

    ``with_score=False`` loads no score model (``min_score`` is then ignored and examples are not
    checked): what ``bot.py train`` needs before a weights file exists. With ``cache`` (a folder), parsed
    files are kept there and reused while their text, the parsing code and the morphology versions are
    unchanged (:mod:`rules.cache`; ``bot.py match`` uses it).
    """
    parse: Callable[[str, str], tuple[RuleFile, list[Problem]]] = parse_file
    if cache is not None:
        from rules.cache import parse_file_cached

        parse = functools.partial(parse_file_cached, folder=cache)
    sources: list[RuleFile] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(str(Path(path)), None, "", f"cannot read the rule file: {exc}"))
            continue
        rf, found = parse(text, str(Path(path)))
        sources.append(rf)
        problems.extend(found)
    return _finish(sources, problems, with_score=with_score)


def parse_rule_text(text: str, file: str, *, others: RuleSet | None = None) -> RuleSet:
    """Validate one file's new text together with the other loaded files; same errors as loading.

    The result is the whole new RuleSet (``others`` with ``file`` replaced, or added), ready to swap in
    only if this returns; ``others`` itself is unchanged.
    """
    file = str(Path(file))  # the same spelling as load_rules uses, so the file is found and replaced
    rf, problems = parse_file(text, file)
    sources = list(others.sources) if others is not None else []
    for i, old in enumerate(sources):
        if old.file == file:
            sources[i] = rf
            break
    else:
        sources.append(rf)
    return _finish(sources, problems)


_BUILTIN_RULES_DIR = Path(__file__).resolve().parent


def _score_path(rule_file: str, name: str) -> Path:
    """``score:`` is relative to the rule file; a copy of the default file (a deployment's config
    folder, a test's tmp_path) that lacks the weights beside it uses the shipped ones in rules/."""
    beside = Path(rule_file).parent / name
    shipped = _BUILTIN_RULES_DIR / name
    if not beside.exists() and Path(name).name == name and shipped.is_file():
        return shipped
    return beside


def _load_scorer(sources: Sequence[RuleFile], problems: list[Problem]) -> Scorer | None:
    for rf in sources:
        if rf.score is not None:
            try:
                return load_scorer(_score_path(rf.file, rf.score))
            except ScoreFileError as exc:
                problems.append(Problem(rf.file, rf.score_line, "score", str(exc)))
    return None


def _finish(sources: list[RuleFile], problems: list[Problem], *, with_score: bool = True) -> RuleSet:
    problems.extend(check_references(sources))
    scorer = _load_scorer(sources, problems) if with_score else None
    if problems:
        raise RuleError(problems)
    ruleset = RuleSet.compile(sources, scorer)
    if not with_score:
        return ruleset
    from rules.examples import check_examples

    problems.extend(check_examples(ruleset))
    if problems:
        raise RuleError(problems)
    return ruleset


def match_items(ruleset: RuleSet, items: Sequence[Item]) -> list[list[Match]]:
    """:meth:`RuleSet.match` for each item: one feed's items as one task of a CPU pool (core/workers.py)."""
    return [ruleset.match(item) for item in items]
