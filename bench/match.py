"""Matching benchmark: ``python bench/match.py`` (from the repository root) prints figures.

Sections:

1. **morphology** — how Russian aliases should find inflected words: exact word, Snowball stems at run
   time, pymorphy3 lemmas at run time (uncached and cached), and the engine's choice (all forms
   generated at load time, Snowball fallback). Precision/recall/F1 on a hand-labelled sample written
   below, and throughput of the per-token work.
2. **throughput** — 20,000 mixed ru/en/ko items (from ``tests/data/devset*.jsonl`` if present,
   multiplied; else recombined from the sentences below) through
   (a) the default rules (``rules/dprk_russia.yaml`` if present and loadable, else a built-in set),
   (b) 500 generated rules over ~5,000 aliases,
   beside (c) a naive per-keyword ``re.search`` loop over the same aliases and (d) a raw
   pyahocorasick scan of the same normalised text (scan only). Targets: ≥ 10× (c), ≥ 1/3 of (d),
   ≥ 5,000 items/s with the default rules, on one core.
3. **load** — load/compile time and memory of the compiled default rules.
4. **score** — the default rules with the relevance score (``rules/score.py``) beside the same rules
   compiled without it, in the same run: items/s on items that match nothing (target ≥ 5,000; the
   score must cost nothing there), on matched items, and on the typical and topic-dense mixes.
5. **start-up and real files** — the fixed cost of a ``bot.py match`` run (a one-item file, in a fresh
   process): with no rule cache, and with the parsed rule files cached on disk (:mod:`rules.cache`);
   then real items (``../shared/data/real_dev.jsonl`` if present, written as RSS files of 100 items in a
   temporary folder, never into the repository) through ``bot.py match``'s own code in one process,
   items/s beside ``feedparser.parse`` alone on the same files, and the RE2 pass per field with and
   without its required-literal pre-filter. ``--startup`` runs only this section.
6. **matched items** (in both runs) — the real items parsed once, then ``RuleSet.match`` alone: µs per
   matched item (its rules, spans and score) and per other item, one core's CPU time. ``--baseline REV``
   measures git revision REV too (``git archive`` into a temporary folder, measured by this script), each
   tree in its own process, taking turns, and, with ``--startup``, runs ``bot.py match`` of both trees.

Items/s inside this process are one core's CPU time (best of 3); the whole command's are wall time, with its
CPU seconds (the command and its workers) beside them. ``--quick`` runs fewer items (for a smoke test).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402

from core.errors import RuleError  # noqa: E402
from rules import RuleSet, load_rules, parse_rule_text  # noqa: E402
from rules.morph import alias_variants, analyzer, stem  # noqa: E402
from rules.text import TOKEN_RE, normalize, tokens  # noqa: E402

# --- sentences -------------------------------------------------------------------------------------

RU = """
Глава Минобороны КНДР принял делегацию российских военных во главе с Виктором Горемыкиным.
Южнокорейская разведка заявила, что из КНДР в Россию направляются военные строители.
Министр обороны КНДР Но Гван Чоль принял в Пхеньяне делегацию военно-политического управления.
Посол России Александр Мацегора встретился с представителями МИД Северной Кореи.
Около 5 тыс. северокорейских военных строителей последовательно перемещаются в Россию.
Ким Чен Ын принял решение направить саперов в Курскую область.
КНДР запустила баллистическую ракету в сторону Японского моря.
Российско-корейские переговоры прошли в дружественной обстановке.
Путин и Ким Чен Ын подписали договор о всеобъемлющем стратегическом партнерстве.
Северокорейские военные участвовали в освобождении Курской области.
Пхеньян и Москва договорились расширить военно-техническое сотрудничество.
В Москве прошли переговоры министров иностранных дел России и КНДР.
Шойгу прибыл в Пхеньян с визитом и встретился с Ким Чен Ыном.
По данным разведки, Северная Корея поставила России миллионы артиллерийских снарядов.
Эксперты обсуждают поставки северокорейских ракет для российской армии.
Корейская народная армия провела учения у демилитаризованной зоны.
Делегация Вооруженных сил России посетила военные объекты в КНДР.
Российские и северокорейские военные обсудили обмен опытом.
Северная Корея отрицает поставки оружия России.
Сеул выразил обеспокоенность сближением Москвы и Пхеньяна.
Курс рубля укрепился на фоне роста цен на нефть.
В Подмосковье открылся новый логистический центр.
Сборная России по хоккею выиграла товарищеский матч.
Ракетка известного теннисиста ушла с молотка за рекордную сумму.
В Россоши отремонтировали центральную площадь.
Москвич стал самым продаваемым автомобилем месяца.
Синоптики обещают снег и гололед в выходные.
Центробанк сохранил ключевую ставку без изменений.
На фестивале корейской кухни в Москве представили кимчи.
Туристы из России смогут посетить Пхеньянский зоопарк.
Южная Корея и Япония провели совместные учения флота.
В Японии прошли выборы в парламент.
Аналитики ожидают снижения инфляции к концу года.
Новый мост через реку откроют в декабре.
Футбольный клуб объявил о подписании контракта с нападающим.
Школьники из Приморья посетили выставку робототехники.
Министр обороны России провел совещание по гособоронзаказу.
В КНДР отметили годовщину основания партии военным парадом.
Госдума ратифицировала договор о стратегическом партнерстве с КНДР.
Северокорейский лидер осмотрел новые пусковые установки.
Правительство утвердило программу поддержки малого бизнеса на три года.
В Санкт-Петербурге завершился международный экономический форум.
Врачи рекомендуют сделать прививку от гриппа до начала сезона.
Цены на бензин на биржевых торгах выросли третью неделю подряд.
Аэропорт Шереметьево ввел в эксплуатацию новый терминал.
В Калининграде прошел фестиваль уличных театров.
Ученые МГУ создали новый материал для солнечных батарей.
Регион получит дополнительное финансирование на ремонт дорог.
Суд отложил рассмотрение дела о банкротстве застройщика.
Министерство просвещения изменит порядок проведения экзаменов.
Вратарь продлил контракт с клубом еще на два сезона.
Тысячи зрителей пришли на концерт симфонического оркестра.
Компания отчиталась о росте выручки на 12% по итогам квартала.
В Казани открылась выставка современного искусства.
Рыбаки сообщили о рекордном улове лосося на Камчатке.
Власти Москвы объявили о продлении программы реновации.
Кинофестиваль в Сочи назвал победителей конкурсной программы.
На трассе М-11 ограничат движение из-за ремонта.
Эксперты прогнозируют рост спроса на ипотеку весной.
В Новосибирске выпал первый снег, движение затруднено.
Банк России опубликовал обзор финансовой стабильности.
Популярный блогер запустил собственную линию одежды.
Археологи нашли в Крыму монеты античного периода.
Жители поселка пожаловались на перебои с водоснабжением.
Спортсменка установила новый национальный рекорд в плавании.
Электрички на направлении изменят расписание с понедельника.
Индекс Мосбиржи завершил торги небольшим снижением.
Дети из детского дома получили подарки от волонтеров.
Новый закон о маркетплейсах вступит в силу с марта.
Театр представил премьеру спектакля по пьесе Чехова.
"""

EN = """
North Korea's leader Kim Jong-un met Russia's defence minister in Pyongyang.
Russian and North Korean officials discussed military cooperation in Moscow.
Thousands of North Korean troops were deployed to Russia's Kursk region.
Pyongyang denied supplying artillery shells to the Russian army.
Kim Jong Un inspected a new ballistic missile launcher, state media said.
Moscow and Pyongyang signed a comprehensive strategic partnership treaty.
The DPRK fired a ballistic missile into the East Sea on Tuesday.
South Korea's intelligence agency said North Korean workers are heading to Russia.
Russia's Security Council secretary visited Pyongyang for talks.
Analysts say North Korea's arms exports to Russia are growing.
The central bank left interest rates unchanged on Thursday.
Oil prices rose after the OPEC meeting.
A new smartphone went on sale in Seoul this week.
The football club signed a new striker from Brazil.
Heavy rain caused flooding across the southern provinces.
Tech stocks rallied on strong earnings reports.
The festival of Korean cuisine opened in London.
Scientists discovered a new species of frog in the Amazon.
Russian hockey fans celebrated the team's victory.
A North Korean defector published a memoir about life in Pyongyang.
The UN Security Council discussed sanctions on the DPRK.
Japan and South Korea held joint naval drills.
The Kremlin said Putin and Kim discussed military ties.
Ukraine says North Korean missiles were used in strikes on Kharkiv.
Election results will be announced on Monday.
The city council approved a new budget for public transport.
A heatwave is expected to hit the region later this week.
Shares of the carmaker fell after a recall of two million vehicles.
The museum reopened after a two-year renovation.
Researchers found that regular exercise improves sleep quality.
The airline announced new direct flights to Singapore.
A major software update fixed several security flaws.
The prime minister promised to cut taxes for small businesses.
Housing prices in the capital rose for the third straight month.
The tennis champion withdrew from the tournament with an injury.
Investors are watching inflation data due out on Friday.
A wildfire forced the evacuation of several villages.
The startup raised 40 million dollars in its latest funding round.
Union workers voted to accept the new contract.
The film won the top prize at the festival.
Police arrested three suspects after the bank robbery.
The government unveiled plans for a high-speed rail line.
Farmers warned that the drought could reduce the harvest.
The company plans to open 50 new stores next year.
Astronomers observed a rare alignment of planets.
"""

KO = """
북한의 김정은 국무위원장이 러시아 국방장관을 평양에서 접견했다.
북한군은 러시아 쿠르스크 지역에 파병된 것으로 알려졌다.
러시아와 북한은 포괄적 전략적 동반자 관계 조약을 체결했다.
국가정보원은 북한이 러시아에 포탄을 공급했다고 밝혔다.
북한은 동해상으로 탄도미사일을 발사했다.
조선중앙통신은 김정은 위원장이 미사일 발사대를 시찰했다고 보도했다.
북한강 일대에서 수상 레저 축제가 열렸다.
평양냉면 전문점이 서울에 새로 문을 열었다.
조선업계는 올해 수주 실적이 크게 늘었다고 밝혔다.
한국은행은 기준금리를 동결했다.
서울 아파트 가격이 3주 연속 상승했다.
프로야구 개막전이 다음 주 열린다.
러시아 외무장관이 평양을 방문해 군사 협력을 논의했다.
북한 노동자들이 러시아 건설 현장에 투입되고 있다.
정부는 북러 군사 협력에 깊은 우려를 표명했다.
내일은 전국에 비가 내릴 전망이다.
반도체 수출이 역대 최대를 기록했다.
북한과 러시아의 무기 거래에 대한 제재가 논의됐다.
정부는 내년 예산안을 국회에 제출했다.
주말 동안 고속도로 교통량이 크게 늘어날 것으로 보인다.
삼성전자는 새로운 스마트폰을 공개했다.
서울시는 대중교통 요금 인상을 발표했다.
올해 수능 응시자는 작년보다 늘었다.
배우 김 모 씨가 새 드라마에 출연한다.
부산에서 국제영화제가 개막했다.
소비자물가 상승률이 둔화됐다.
프로축구 리그에서 울산이 우승을 차지했다.
독감 환자가 빠르게 늘고 있어 주의가 필요하다.
자동차 수출이 전년 대비 증가했다.
한강 공원에서 불꽃축제가 열렸다.
기상청은 내일 아침 기온이 크게 떨어진다고 예보했다.
대학 등록금 동결 방침이 유지된다.
"""


RELEVANT = 0.15  # share of on-topic sentences in the recombined items (a dense, worst-ish case)
SPARSE = 0.03  # a typical monitored feed: most items are about something else
TYPICAL_MATCHING = 0.06  # the share of a typical feed mix's items that match (3 % of sentences on topic)


def sentences() -> dict[str, list[str]]:
    return {lang: [s.strip() for s in block.strip().splitlines() if s.strip()] for lang, block in
            (("ru", RU), ("en", EN), ("ko", KO))}  # fmt: skip


def make_items(count: int, seed: int = 7, relevant: float | None = None) -> list[tuple[str, str]]:
    """``count`` (title, summary) pairs: from the dev set if it exists, else recombined sentences.

    ``relevant`` forces recombined sentences with that share of on-topic sentences.
    """
    data = REPO / "tests" / "data"
    base: list[tuple[str, str]] = []
    for devset in sorted(data.glob("devset*.jsonl")) if data.is_dir() else []:
        for line in devset.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and isinstance(row.get("title"), str):
                base.append((row["title"], str(row.get("summary") or "")))
    rng = random.Random(seed)
    if base and relevant is None:
        return [base[i % len(base)] for i in range(count)]
    share = RELEVANT if relevant is None else relevant
    # Feeds are mostly about other things: a sentence is on-topic with probability RELEVANT.
    topic = parse_rule_text(BUILTIN_RULES, "topic.yaml")
    pools: dict[str, tuple[list[str], list[str]]] = {}
    for lang, pool in sentences().items():
        on = [x for x in pool if any(h.group in ("DPRK", "RUSSIA") for h in topic.scan(x))]
        pools[lang] = (on, [x for x in pool if x not in on])
    langs = list(pools)

    def pick(lang: str) -> str:
        on, off = pools[lang]
        return rng.choice(on if rng.random() < share else off)

    out = []
    for _ in range(count):
        lang = rng.choice(langs)
        title = pick(lang).rstrip(".")
        summary = " ".join(pick(lang) for _ in range(rng.randint(2, 4)))
        out.append((title, summary))
    return out


# --- rule sets -------------------------------------------------------------------------------------

BUILTIN_RULES = """
version: 1
groups:
  DPRK:
    kind: entity
    aliases: [КНДР, Северная Корея, северокорейский, Пхеньян, Ким Чен Ын, Корейская народная армия,
              North Korea, North Korean, DPRK, Pyongyang, Kim Jong Un, 북한, 평양, 김정은, 조선중앙통신, 북러]
    exclude: [북한강, 평양냉면]
  RUSSIA:
    kind: entity
    aliases: [Россия, российский, Москва, Кремль, Путин, Шойгу, Russia, Russian, Moscow, Kremlin, Putin,
              러시아, 모스크바, 푸틴, 북러]
  MILITARY:
    kind: keywords
    aliases: [военный, армия, ракета, снаряд, боеприпасы, учения, Минобороны, министр обороны,
              военно-техническое сотрудничество, военные строители, military, troops, missile, missiles,
              artillery, shells, defence minister, arms,
              군사, 군대, 북한군, 미사일, 포탄, 파병, 국방장관, 무기]
  TREATY:
    kind: keywords
    aliases: [договор, стратегическое партнерство, соглашение, treaty, partnership, 조약, 동반자]
  SPORT:
    aliases: [хоккей, футбол, сборная, матч, hockey, football, 프로야구]
rules:
  - name: dprk_russia_military
    priority: instant
    all: [DPRK, RUSSIA]
    any: [MILITARY, TREATY]
    none: [SPORT]
    near: 40
  - name: dprk_russia_any
    all: [DPRK, RUSSIA]
  - name: dprk_missile
    all: [DPRK, {group: MILITARY, in: title}]
  - name: dprk_sentence
    all: [DPRK, RUSSIA]
    near: sentence
"""


def default_rules() -> tuple[str, RuleSet, float]:
    """(source, rule set, load seconds) — the project's default file if it loads, else built-in."""
    path = REPO / "rules" / "dprk_russia.yaml"
    if path.is_file():
        t = time.perf_counter()
        try:
            rs = load_rules([path])
            return str(path.relative_to(REPO)), rs, time.perf_counter() - t
        except RuleError as exc:
            print(f"  (rules/dprk_russia.yaml does not load: {len(exc.problems)} problems; using built-in)")
    t = time.perf_counter()
    rs = parse_rule_text(BUILTIN_RULES, "builtin.yaml")
    return "built-in set", rs, time.perf_counter() - t


_SYLLABLES = {  # made-up words are built from these (space-separated)
    "ru": "ка ро ми на ле то ва за пе ру ст ин ов ск ий ая ен да ли ны ко",
    "en": "ar en ro ta li ve con ex ter sta mi no pa de ri so tra pol",
    "ko": "가 나 다 라 마 바 사 아 자 차 카 타 파 하 국 민 정 부 군 산",
}


def synthetic_rules(items: Sequence[tuple[str, str]], n_rules: int = 500, n_groups: int = 250,
                    per_group: int = 20, seed: int = 11) -> str:  # fmt: skip
    """YAML with ``n_groups`` × ``per_group`` aliases and ``n_rules`` rules over them.

    A tenth of the aliases are words (5+ letters) and word pairs taken from the items, so rules do
    fire; the rest are made-up words of 3–5 syllables in the three scripts (Russian ones are unknown to
    pymorphy3, so they exercise the Snowball fallback).
    """
    rng = random.Random(seed)
    vocab: list[str] = []
    seen: set[str] = set()
    for title, summary in items[:2000]:
        words = [w for w in TOKEN_RE.findall(f"{title} {summary}") if len(w) > 4 and not w.isdigit()]
        for i, w in enumerate(words):
            cand = w if rng.random() < 0.8 or i + 1 == len(words) else f"{w} {words[i + 1]}"
            if cand.lower() not in seen:
                seen.add(cand.lower())
                vocab.append(cand)
    rng.shuffle(vocab)
    lines = ["version: 1", "groups:"]
    for g in range(n_groups):
        aliases = []
        for _ in range(per_group):
            if vocab and rng.random() < 0.1:
                aliases.append(vocab.pop())
            else:
                lang = rng.choice(list(_SYLLABLES))
                syllables = _SYLLABLES[lang].split()
                aliases.append("".join(rng.choice(syllables) for _ in range(rng.randint(3, 5))))
        lines.append(f"  G{g}:")
        lines.append("    aliases:")
        lines.extend(f"      - {json.dumps(a, ensure_ascii=False)}" for a in aliases)
    lines.append("rules:")
    for r in range(n_rules):
        a, b, c, d = rng.sample(range(n_groups), 4)
        lines.append(f"  - name: r{r}")
        lines.append(f"    all: [G{a}]")
        lines.append(f"    any: [G{b}, G{c}]")
        if r % 3 == 0:
            lines.append(f"    none: [G{d}]")
        if r % 4 == 0:
            lines.append("    near: 20")
    return "\n".join(lines) + "\n"


def all_aliases(rs: RuleSet) -> list[str]:
    return [a.text for g in rs.groups.values() for a in g.aliases if a.kind != "regex"]


# --- timing helpers --------------------------------------------------------------------------------


def rate(fn: Callable[[], Any], count: int, repeat: int = 3) -> float:
    """Best items/s of ``repeat`` runs of ``fn`` (which processes ``count`` items), in this process's CPU
    time: everything timed here runs on one thread, and CPU time swings less than wall time on a shared
    machine."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return count / best


def rss_mib() -> float:
    return float(psutil.Process(os.getpid()).memory_info().rss) / 2**20


def throughput(label: str, rs: RuleSet, items: Sequence[tuple[str, str]], naive_sample: int) -> None:
    aliases = all_aliases(rs)
    normalised = [(normalize(t).text, normalize(s).text) for t, s in items]
    automaton = rs._scanner.automaton

    def ours() -> None:
        for t, s in items:
            rs.match_text(t, s)

    def raw_scan() -> None:
        it = automaton.iter
        for t, s in normalised:
            for _ in it(t):
                pass
            for _ in it(s):
                pass

    patterns = [re.compile(r"(?<!\w)" + re.escape(a.lower()) + r"(?!\w)") for a in aliases]
    sample = items[:naive_sample]

    def naive() -> None:
        for t, s in sample:
            text = f"{t}\n{s}".lower()
            for p in patterns:
                p.search(text)

    n = len(items)
    ours_rate = rate(ours, n)
    raw_rate = rate(raw_scan, n)
    naive_rate = rate(naive, len(sample), repeat=1)
    matched = sum(1 for t, s in items if rs.match_text(t, s))
    with_hits = sum(1 for t, s in items if rs.scan(t, s))
    chars = sum(len(t) + len(s) for t, s in items) / n
    print(f"\n{label}: {len(rs.rules)} rules, {len(rs.groups)} groups, {len(aliases)} aliases, "
          f"{rs._scanner.n_keys} automaton keys")  # fmt: skip
    print(f"  {n} items ({chars:.0f} characters each on average): {with_hits / n:.0%} mention a group, "
          f"{matched / n:.0%} match a rule")  # fmt: skip
    print(f"  (a/b) engine, full match     {ours_rate:>10,.0f} items/s")
    print(f"  (c) naive re.search loop     {naive_rate:>10,.0f} items/s   (on {len(sample)} items)")
    print(f"  (d) raw pyahocorasick scan   {raw_rate:>10,.0f} items/s   (pre-normalised text, scan only)")
    print(f"  engine / naive = {ours_rate / naive_rate:,.1f}×   (target ≥ 10×)")
    print(f"  engine / raw scan = {ours_rate / raw_rate:.2f}   (target ≥ 0.33)")


def score_cost(label: str, rs: RuleSet, items: Sequence[tuple[str, str]]) -> None:
    """Items/s with the score (``rs``) and without it (the same files compiled with no model)."""
    bare = RuleSet.compile(rs.sources)
    matched = [it for it in items if bare.match_text(*it)]
    unmatched = [it for it in items if not bare.match_text(*it)]
    print(f"\n{label}: score model {'loaded' if rs.scorer else 'ABSENT'}; "
          f"{len(matched)} matched, {len(unmatched)} matching nothing")  # fmt: skip
    for name, subset in (("all items", items), ("matching nothing", unmatched), ("matched items", matched)):
        if not subset:
            continue

        def run(r: RuleSet, subset: Sequence[tuple[str, str]] = subset) -> Callable[[], None]:
            def go() -> None:
                for t, s in subset:
                    r.match_text(t, s)

            return go

        without = rate(run(bare), len(subset))
        with_score = rate(run(rs), len(subset))
        print(f"  {name:<18} without score {without:>9,.0f} items/s   with score {with_score:>9,.0f} items/s"
              f"   ({with_score / without:.2f}×)")  # fmt: skip


# --- morphology comparison -------------------------------------------------------------------------

# Aliases for the comparison, and sentences with the aliases each truly mentions (hand-labelled).
MORPH_ALIASES = {
    "kndr": "КНДР",
    "nk": "Северная Корея",
    "pyongyang": "Пхеньян",
    "nk_adj": "северокорейский",
    "russia": "Россия",
    "ru_adj": "российский",
    "moscow": "Москва",
    "missile": "ракета",
    "kim": "Ким Чен Ын",
    "goremykin": "Горемыкин",
    "matsegora": "Мацегора",
    "kursk": "Курская область",
}

MORPH_SAMPLE: list[tuple[str, set[str]]] = [
    ("В КНДР прошел военный парад", {"kndr"}),
    ("Делегация Северной Кореи прибыла в Москву", {"nk", "moscow"}),
    ("В Пхеньяне состоялись переговоры", {"pyongyang"}),
    ("Северокорейских военных строителей направят в Россию", {"nk_adj", "russia"}),
    ("Москвич вновь стал самым популярным автомобилем", set()),
    ("В Россоши открыли новый завод", set()),
    ("Ракетка для тенниса подорожала вдвое", set()),
    ("Северокорейская ракета упала в море", {"nk_adj", "missile"}),
    ("Ракеты были запущены с территории КНДР", {"missile", "kndr"}),
    ("Ким Чен Ына встретили в Москве", {"kim", "moscow"}),
    ("Ким Чен Ыном были довольны военные", {"kim"}),
    ("Виктор Горемыкин провел встречу с военными", {"goremykin"}),
    ("Встреча с Горемыкиным прошла в Пхеньяне", {"goremykin", "pyongyang"}),
    ("Посол Александр Мацегора заявил о расширении связей", {"matsegora"}),
    ("Слова Мацегоры привели агентства", {"matsegora"}),
    ("Мацегорой было сказано немало", {"matsegora"}),
    ("Саперы работают в Курской области", {"kursk"}),
    ("Курскую область посетил губернатор", {"kursk"}),
    ("Россией и КНДР подписан договор", {"russia", "kndr"}),
    ("Российские военные прибыли на учения", {"ru_adj"}),
    ("Южная Корея и Россия провели консультации", {"russia"}),
    ("Северный ветер принес в Корею холод", set()),
    ("Северную Корею посетил министр", {"nk"}),
    ("Обе Кореи отметили годовщину", set()),
    ("Росс заявил журналистам о новом фильме", set()),
    ("Российская делегация прибыла в Пхеньян", {"ru_adj", "pyongyang"}),
    ("Пхеньяном были приняты меры", {"pyongyang"}),
    ("Из Москвы вылетел самолет", {"moscow"}),
    ("Москвой и Пхеньяном подписано соглашение", {"moscow", "pyongyang"}),
    ("Москва-река покрылась льдом", {"moscow"}),
    ("Ракетами поражены цели", {"missile"}),
    ("О ракетах рассказали эксперты", {"missile"}),
    ("Ракетный удар нанесен ночью", set()),
    ("Северокорейскому лидеру вручили награду", {"nk_adj"}),
    ("Северокорейскими властями принято решение", {"nk_adj"}),
    ("Россиян эвакуировали из района", set()),
    ("Российским компаниям разрешили экспорт", {"ru_adj"}),
    ("Российскую технику доставили по железной дороге", {"ru_adj"}),
    ("В России выросли цены", {"russia"}),
    ("Курская АЭС работает штатно", set()),
    ("Курский вокзал закрыт на ремонт", set()),
    ("Граница с Курской областью усилена", {"kursk"}),
    ("Северной Корее предложили гуманитарную помощь", {"nk"}),
    ("Северной Кореей был выпущен спутник", {"nk"}),
    ("Горемыкина наградили орденом", {"goremykin"}),
    ("Горемыкину доложили о ходе работ", {"goremykin"}),
    ("Мацегоре вручили верительные грамоты", {"matsegora"}),
    ("Пхеньянский метрополитен открыл станцию", set()),
    ("Пхеньянцы отмечают праздник", set()),
    ("Кимчи приготовили по старинному рецепту", set()),
    ("Ким Чен Ыну доложили о запуске", {"kim"}),
    ("Армия КНДР провела учения", {"kndr"}),
    ("Ракетой класса земля-воздух сбит дрон", {"missile"}),
    ("Северокорейские ракеты используются на фронте", {"nk_adj", "missile"}),
    ("Россия и Корея обсудили торговлю", {"russia"}),
    ("В Москве прошла встреча с корейской делегацией", {"moscow"}),
    ("Горемыкины переехали в новый дом", {"goremykin"}),
    ("В Пхеньян прибыл российский министр", {"pyongyang", "ru_adj"}),
    ("Россошанский район получил субсидию", set()),
    ("Москвичи вышли на субботник", set()),
    ("В Курской и Белгородской областях объявлена тревога", {"kursk"}),
    ("Северо-корейская армия провела учения", {"nk_adj"}),
]


def _phrase_found(words: Sequence[str], toks: Sequence[str], eq: Callable[[str, str], bool]) -> bool:
    n = len(words)
    return any(all(eq(words[k], toks[i + k]) for k in range(n)) for i in range(len(toks) - n + 1))


def _score(predict: Callable[[str, str], bool]) -> tuple[float, float, float]:
    tp = fp = fn = 0
    for sentence, gold in MORPH_SAMPLE:
        for key, alias in MORPH_ALIASES.items():
            p, g = predict(alias, sentence), key in gold
            tp += p and g
            fp += p and not g
            fn += g and not p
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return prec, rec, 2 * prec * rec / (prec + rec) if prec + rec else 0.0


def morphology() -> None:
    print("morphology: 12 Russian aliases × 62 hand-labelled sentences (per alias-sentence pair)")
    morph = analyzer()

    def lemma(w: str) -> str:
        return str(morph.parse(w)[0].normal_form).replace("ё", "е")

    cached_lemma = lru_cache(maxsize=100_000)(lemma)

    def exact(alias: str, sentence: str) -> bool:
        return _phrase_found(tokens(alias), tokens(sentence), str.__eq__)

    def snowball(alias: str, sentence: str) -> bool:
        return _phrase_found(tokens(alias), tokens(sentence), lambda a, b: stem(a) == stem(b))

    def lemmas(alias: str, sentence: str) -> bool:
        return _phrase_found(tokens(alias), tokens(sentence), lambda a, b: cached_lemma(a) == cached_lemma(b))

    groups = "\n".join(f"  {k}:\n    aliases: [{json.dumps(v, ensure_ascii=False)}]" for k, v in MORPH_ALIASES.items())
    rs = parse_rule_text(f"version: 1\ngroups:\n{groups}\n", "morph.yaml")

    def forms(alias: str, sentence: str) -> bool:
        key = next(k for k, v in MORPH_ALIASES.items() if v == alias)
        return any(h.group == key for h in rs.scan(sentence))

    # Throughput of the per-token work, on the sample's tokens repeated (all distinct at first).
    words = [t for s, _ in MORPH_SAMPLE for t in tokens(s)] * 20
    distinct = sorted(set(words))
    t = time.perf_counter()
    for w in distinct:
        lemma(w)
    lemma_rate = len(distinct) / (time.perf_counter() - t)
    cached_rate = rate(lambda: [cached_lemma(w) for w in words], len(words))
    stem_rate = rate(lambda: [stem(w) for w in words], len(words))
    text = " ".join(s for s, _ in MORPH_SAMPLE) * 20
    n_tokens = len(tokens(text))
    forms_rate = rate(lambda: rs.scan(text), n_tokens)
    t = time.perf_counter()
    n_forms = sum(len(alias_variants(a)) for a in MORPH_ALIASES.values())
    print(f"  {'approach':<44} {'P':>5} {'R':>5} {'F1':>5} {'tokens/s':>12}")
    rows: Iterable[tuple[str, Callable[[str, str], bool], float | None]] = (
        ("exact word", exact, None),
        ("Snowball stem at run time", snowball, stem_rate),
        ("pymorphy3 lemma at run time (uncached)", lemmas, lemma_rate),
        ("pymorphy3 lemma at run time (lru_cache)", lemmas, cached_rate),
        ("forms at load + Snowball fallback (engine)", forms, forms_rate),
    )
    for name, fn, speed in rows:
        p, r, f1 = _score(fn)
        shown = f"{speed:>12,.0f}" if speed else f"{'—':>12}"
        print(f"  {name:<44} {p:>5.2f} {r:>5.2f} {f1:>5.2f} {shown}")
    print(f"  forms generated at load: {n_forms} for {len(MORPH_ALIASES)} aliases")
    print("  (engine tokens/s = whole scan of the text incl. normalisation, all 12 aliases at once)")


# --- main ------------------------------------------------------------------------------------------


def _match_run_seconds(cache_home: Path, input_file: Path, runs: int = 5) -> float:
    import statistics
    import subprocess

    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, str(REPO / "bot.py"), "match", "--input", str(input_file)],
            check=True, capture_output=True, env=env, cwd=REPO,
        )  # fmt: skip
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _rss(items: Sequence[dict[str, Any]]) -> bytes:
    from xml.sax.saxutils import escape

    entries = "".join(
        f"<item><guid>{escape(str(i['id']))}</guid><title>{escape(i['title'])}</title>"
        f"<link>{escape(i.get('link') or '')}</link><description>{escape(i['summary'])}</description></item>"
        for i in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>real</title>'
        f"{entries}</channel></rss>"
    ).encode()


def prefilter(ruleset: RuleSet, texts: Sequence[str]) -> None:
    """The RE2 pass per field with and without the required-literal pre-filter, on the same texts."""
    for regex_set in (s for s in vars(ruleset._scanner).values() if hasattr(s, "literals")):
        saved, figures = regex_set.literals, []
        out: list[Any] = []
        for literals in (saved, None):
            regex_set.literals = literals
            started = time.perf_counter()
            for _ in range(5):
                for text in texts:
                    regex_set.scan(text, 0, out)
            figures.append((time.perf_counter() - started) / (5 * len(texts)) * 1e6)
        regex_set.literals = saved
        print(f"RE2 pre-filter, a set of {len(regex_set.regexes)} regex aliases: {figures[0]:.2f} µs a real field "
              f"with it, {figures[1]:.2f} µs without")  # fmt: skip


def startup_and_files(baseline: Path | None = None) -> None:
    import io
    import subprocess
    import tempfile

    import feedparser

    from cli.match import iter_input, result_record

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        one = tmp / "one.jsonl"
        one.write_text(json.dumps({"id": 1, "title": "КНДР и Россия подписали договор"}) + "\n", encoding="utf-8")
        cold = []
        for n in range(3):  # a fresh cache folder each time: what every run cost before the cache
            cold.append(_match_run_seconds(tmp / f"cold{n}", one, runs=1))
        warm_home = tmp / "warm"
        _match_run_seconds(warm_home, one, runs=1)  # fills the cache
        warm = _match_run_seconds(warm_home, one)
        cold.sort()
        print(f"\nstart-up: `bot.py match` on a one-item file, median wall: no rule cache "
              f"{cold[1]:.2f} s; parsed rules cached on disk {warm:.2f} s")  # fmt: skip
        real = REPO.parent / "shared" / "data" / "real_dev.jsonl"
        if not real.is_file():
            print("real files: ../shared/data/real_dev.jsonl not found; skipped")
            return
        matched_item_cost(real, baseline)
        rows = [json.loads(line) for line in real.read_text(encoding="utf-8").splitlines() if line.strip()]
        files = []
        (tmp / "real").mkdir()
        for n in range(0, len(rows), 100):
            path = tmp / "real" / f"real{n // 100:03d}.xml"
            path.write_bytes(_rss(rows[n : n + 100]))
            files.append(path)
        started = time.perf_counter()
        for path in files:
            feedparser.parse(path.read_bytes(), sanitize_html=False, resolve_relative_uris=False)
        fp = time.perf_counter() - started
        ruleset = default_rules()[1]  # loaded once: the fixed cost is the start-up figure above
        sink = io.StringIO()
        started = time.perf_counter()
        for path in files:  # bot.py match's own loop (cli/match.run_match), without the rule load
            for item_id, item in iter_input(str(path), sink):
                sink.write(json.dumps(result_record(item_id, ruleset.match(item)), ensure_ascii=False) + "\n")
        ours = time.perf_counter() - started
        prefilter(ruleset, [(r["title"] + " " + r["summary"]).lower().replace("ё", "е") for r in rows])
        print(f"real files: {len(rows):,} real items in {len(files)} RSS files: `bot.py match` (parse + match, "
              f"after start-up) {len(rows) / ours:,.0f} items/s; feedparser.parse alone {len(rows) / fp:,.0f} "
              f"items/s; ratio {fp / ours:.1f}x")  # fmt: skip
        # the command itself over a directory (start-up included), one worker and one per core; the files
        # five times over (145 files, 14,225 items) so that the start-up is not most of the run
        big = tmp / "big"
        big.mkdir()
        for copy in range(5):
            for path in files:
                (big / f"{copy}-{path.name}").write_bytes(path.read_bytes())
        env = {**os.environ, "XDG_CACHE_HOME": str(warm_home)}

        def command_figures(folder: Path, items: int, feedparser_s: float) -> str:
            trees = [("", REPO)] + ([("baseline ", baseline)] if baseline is not None else [])
            import resource

            def children_cpu() -> float:
                usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the command and its workers, once reaped
                return usage.ru_utime + usage.ru_stime

            cli: dict[tuple[str, int], float] = {}
            cpu: dict[tuple[str, int], float] = {}
            for _ in range(3):  # the best of 3, the trees taking turns: the machine is shared
                for label, tree in trees:
                    for workers in (1, os.cpu_count() or 1):
                        command = [sys.executable, str(tree / "bot.py"), "match", "--input", str(folder),
                                   "--workers", str(workers)]  # fmt: skip
                        started, cpu0 = time.perf_counter(), children_cpu()
                        subprocess.run(command, check=True, capture_output=True, env=env, cwd=tree)
                        key = (label, workers)
                        cli[key] = min(cli.get(key, float("inf")), time.perf_counter() - started)
                        cpu[key] = min(cpu.get(key, float("inf")), children_cpu() - cpu0)
            return "; ".join(
                f"{label}{w} worker{'s' if w > 1 else ''} {items / t:,.0f} items/s "
                f"({feedparser_s / t:.1f}x feedparser alone), {cpu[(label, w)]:.2f} CPU s"
                for (label, w), t in cli.items()
            )

        quiet = [r for r in rows if not ruleset.match_text(r["title"], r["summary"])]
        dense = command_figures(big, 5 * len(rows), 5 * fp)
        print(f"`bot.py match --input DIR` over {5 * len(files)} files, {5 * len(rows):,} real items, "
              f"{1 - len(quiet) / len(rows):.1%} matching (whole command, start-up included, best of 3): "
              f"{dense}")  # fmt: skip
        floors(ruleset, files, warm)
        # a typical mix: the same real files plus copies of their non-matching items, to ~6 % matching
        matching = 5 * (len(rows) - len(quiet))
        extra = round(matching / TYPICAL_MATCHING) - 5 * len(rows)
        copies = [{**quiet[k % len(quiet)], "id": f"{quiet[k % len(quiet)]['id']}~{k}"} for k in range(extra)]
        for n in range(0, len(copies), 100):
            (big / f"typical{n // 100:04d}.xml").write_bytes(_rss(copies[n : n + 100]))
        total = 5 * len(rows) + len(copies)
        started = time.perf_counter()
        for path in sorted(big.iterdir()):
            feedparser.parse(path.read_bytes(), sanitize_html=False, resolve_relative_uris=False)
        fp_typical = time.perf_counter() - started
        print(f"TYPICAL MIX (not the real files alone): the same files plus {len(copies):,} copies of their "
              f"non-matching items, {total:,} items, {matching / total:.1%} matching: "
              f"{command_figures(big, total, fp_typical)}")  # fmt: skip


def item_costs(real: Path, rounds: int = 5) -> dict[str, float]:
    """One core's CPU time of ``RuleSet.match`` on the real items, parsed once (as ``bot.py match`` parses
    them), best of ``rounds``: µs per matched item, µs per other item, items/s over all of them."""
    from watchers.parse import parse_feed

    rows = [json.loads(line) for line in real.read_text(encoding="utf-8").splitlines() if line.strip()]
    ruleset = default_rules()[1]
    bodies = [_rss(rows[n : n + 100]) for n in range(0, len(rows), 100)]
    items = [i for b in bodies for i in parse_feed(b, feed_url="x", keys=False).items]
    matched = [i for i in items if ruleset.match(i)]
    other = [i for i in items if not ruleset.match(i)]
    best = {"matched": float("inf"), "other": float("inf")}
    for _ in range(rounds):
        for name, subset in (("matched", matched), ("other", other)):
            gc.collect()
            started = time.process_time()
            for item in subset:
                ruleset.match(item)
            best[name] = min(best[name], time.process_time() - started)
    return {
        "items": len(items),
        "matched": len(matched),
        "matched_us": best["matched"] / len(matched) * 1e6,
        "other_us": best["other"] / len(other) * 1e6,
        "items_per_s": len(items) / (best["matched"] + best["other"]),
    }


def _costs_in(tree: Path, real: Path) -> dict[str, float]:
    import subprocess

    out = subprocess.run(
        [sys.executable, str(tree / "bench" / "match.py"), "--item-costs", str(real)],
        check=True, capture_output=True, text=True, cwd=tree,
    )  # fmt: skip
    return dict(json.loads(out.stdout.splitlines()[-1]))


def baseline_tree(rev: str, folder: Path) -> Path:
    """The code of git revision ``rev`` in ``folder`` (``git archive``: no worktree, nothing in the repository),
    with THIS benchmark script in it, so both sides are measured by the same code."""
    import io
    import shutil
    import subprocess
    import tarfile

    data = subprocess.run(["git", "-C", str(REPO), "archive", rev], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(folder, filter="data")
    shutil.copy(Path(__file__), folder / "bench" / "match.py")
    return folder


def matched_item_cost(real: Path, baseline: Path | None, rounds: int = 3) -> None:
    """µs per matched real item (rules + spans + score), this tree beside the baseline's, each in its own
    process, taking turns ``rounds`` times; the best of each."""
    trees = [("this tree", REPO)] + ([("baseline", baseline)] if baseline is not None else [])
    best: dict[str, dict[str, float]] = {}
    for _ in range(rounds):
        for label, tree in trees:
            got = _costs_in(tree, real)
            old = best.get(label)
            best[label] = got if old is None else {k: min(v, old[k]) if k.endswith("_us") else max(v, old[k])
                                                    for k, v in got.items()}  # fmt: skip
    first = best["this tree"]
    print(f"\nmatching alone, real items parsed once, one core, CPU time, best of {rounds} × 5 "
          f"({first['items']:,.0f} items, {first['matched']:,.0f} matched):")  # fmt: skip
    for label, b in best.items():
        print(f"  {label:<10} {b['matched_us']:7.1f} µs a matched item   {b['other_us']:6.1f} µs any other   "
              f"{b['items_per_s']:8,.0f} items/s")  # fmt: skip
    if "baseline" in best:
        base = best["baseline"]
        print(f"  this tree / baseline: matched item {first['matched_us'] / base['matched_us']:.2f}×, other item "
              f"{first['other_us'] / base['other_us']:.2f}×, items/s "
              f"{first['items_per_s'] / base['items_per_s']:.2f}×")  # fmt: skip


def floors(ruleset: RuleSet, files: Sequence[Path], startup_s: float) -> None:
    """What bounds the command, one core, same files, CPU time beside ``feedparser.parse``'s: the fast parser
    alone, parsing to Items, matching alone; and the share of a run the fixed start-up (wall) is."""
    from watchers.fastparse import parse as fast_parse
    from watchers.parse import parse_feed

    bodies = [p.read_bytes() for p in files]
    best: dict[str, float] = {}
    items = [i for b in bodies for i in parse_feed(b, feed_url="x", keys=False).items]
    import feedparser

    steps: dict[str, Callable[[], object]] = {
        "feedparser.parse alone": lambda: [
            feedparser.parse(b, sanitize_html=False, resolve_relative_uris=False) for b in bodies
        ],
        "fast parser alone": lambda: [fast_parse(b) for b in bodies],
        "parse to Items (no identity keys, as bot.py match)": lambda: [
            parse_feed(b, feed_url="x", keys=False) for b in bodies
        ],
        "parse to Items with identity keys (as the bot)": lambda: [parse_feed(b, feed_url="x") for b in bodies],
        "matching alone": lambda: [ruleset.match(i) for i in items],
    }
    for name, step in steps.items():
        for _ in range(3):
            started = time.process_time()
            step()
            best[name] = min(best.get(name, float("inf")), time.process_time() - started)
    n = len(items)
    feedparser_item_s = best.pop("feedparser.parse alone") / n  # CPU time too, so the ratios hold under load
    shown = "; ".join(f"{k} {n / t:,.0f} items/s ({feedparser_item_s * n / t:.1f}x)" for k, t in best.items())
    per_item = best["parse to Items (no identity keys, as bot.py match)"] + best["matching alone"]
    ratio = feedparser_item_s * n / per_item
    cap = 14_225 / startup_s
    print(f"floors, one core, CPU time, best of 3, × feedparser.parse alone: {shown}; parse + match "
          f"{n / per_item:,.0f} items/s ({ratio:.1f}x one core, {2 * ratio:.1f}x at best on 2); the fixed start-up "
          f"({startup_s:.2f} s wall) alone caps a 14,225-item run at {cap:,.0f} items/s "
          f"({feedparser_item_s * cap:.1f}x)")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2,000 items instead of 20,000")
    parser.add_argument("--items", type=int, default=None)
    parser.add_argument("--startup", action="store_true", help="only section 5 (start-up and real files)")
    parser.add_argument("--baseline", metavar="REV", help="also measure git revision REV (e.g. main) in the same "
                        "run, taking turns: the matched-item cost and `bot.py match` (section 5)")  # fmt: skip
    parser.add_argument("--item-costs", metavar="JSONL", type=Path, help=argparse.SUPPRESS)  # one tree's side
    args = parser.parse_args(argv)
    if args.item_costs:
        print(json.dumps(item_costs(args.item_costs)))
        return 0
    if args.startup:
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            startup_and_files(baseline_tree(args.baseline, Path(folder)) if args.baseline else None)
        return 0
    count = args.items or (2_000 if args.quick else 20_000)

    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores; one core used\n")
    rss0 = rss_mib()
    t = time.perf_counter()
    analyzer()
    print(f"pymorphy3 analyser: {time.perf_counter() - t:.2f} s to create, +{rss_mib() - rss0:.0f} MiB RSS\n")

    morphology()

    items = make_items(count)
    has_devset = any((REPO / "tests" / "data").glob("devset*.jsonl"))
    print(f"\nitems: {count:,} from {'tests/data/devset*.jsonl' if has_devset else 'recombined sentences'}")
    gc.collect()
    rss1 = rss_mib()
    source, default, load_s = default_rules()
    gc.collect()
    rss2 = rss_mib()
    stats = default._scanner.automaton.get_stats()
    automaton_mib = stats["total_size"] / 2**20
    print(f"\nload: default rules ({source}) loaded, validated (incl. examples) and compiled in "
          f"{load_s * 1000:.0f} ms; +{rss2 - rss1:.1f} MiB RSS; automaton {automaton_mib:.2f} MiB, "
          f"{stats['nodes_count']:,} nodes")  # fmt: skip
    throughput(f"(a) default rules — {source}", default, items, naive_sample=min(2000, count))
    sparse = make_items(count, relevant=SPARSE)
    throughput(f"(a') default rules, a typical feed ({SPARSE:.0%} of sentences on topic)", default, sparse,
               naive_sample=min(2000, count))  # fmt: skip

    score_cost("(score) default rules, topic-dense mix", default, items)
    score_cost(f"(score) default rules, typical feed ({SPARSE:.0%} on topic)", default, sparse)
    real = REPO.parent / "shared" / "data" / "real_dev.jsonl"
    if real.is_file():
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            matched_item_cost(real, baseline_tree(args.baseline, Path(folder)) if args.baseline else None)

    t = time.perf_counter()
    synthetic = parse_rule_text(synthetic_rules(items), "synthetic.yaml")
    synth_s = time.perf_counter() - t
    print(f"\n(b) synthetic rules compiled in {synth_s:.1f} s")
    throughput("(b) 500 synthetic rules", synthetic, items, naive_sample=min(200, count))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
