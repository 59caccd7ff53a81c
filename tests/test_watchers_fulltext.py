"""Article pages: extraction of the main text (ru/en/ko, inside boilerplate) and the fetch's bounds, over
real HTTP on 127.0.0.1."""

from __future__ import annotations

import gzip
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from watchers import PollSettings, make_client
from watchers.fetch import FeedClient
from watchers.fulltext import extract_article, fetch_article

ARTICLES = Path(__file__).parent / "fixtures" / "articles"
SETTINGS = PollSettings(timeout=1.0, max_bytes=1_000_000, allow_private_urls=True)


@pytest.fixture
async def client() -> AsyncIterator[FeedClient]:
    async with make_client(SETTINGS) as c:
        yield c


# (fixture, sentences of the article that must be in the text, boilerplate that must not)
PAGES = [
    (
        "en",
        ["port of Rajin", "North Korean soldiers remain in Russia's Kursk region", "mutual military assistance clause"],
        ["Accept all", "Politics", "Samsung shares", "truthseeker77", "fake news", "All rights reserved", "dataLayer"],
    ),
    (
        "ru",
        ["Шойгу провёл в Пхеньяне переговоры", "взаимной военной помощи", "Ким Чен Ын принял российскую делегацию"],
        ["Кредит наличными", "снегопад", "лучше бы пенсии", "Все права защищены", "_tmr", "ВКонтакте"],
    ),
    (
        "ko",
        ["쿠르스크 지역에 공병과 건설 인력", "방공 체계와 군사 기술", "군사 협력이 조약 체결 이후"],
        ["항공권", "프로야구", "정말 걱정되네요", "개인정보처리방침", "googletag"],
    ),
]


@pytest.mark.parametrize(("name", "kept", "dropped"), PAGES, ids=[p[0] for p in PAGES])
def test_main_text_is_extracted_without_the_boilerplate(name: str, kept: list[str], dropped: list[str]) -> None:
    article = extract_article((ARTICLES / f"{name}.html").read_bytes(), f"https://news.example/{name}")
    assert not isinstance(article, str), article
    for sentence in kept:
        assert sentence in article.text
    for junk in dropped:
        assert junk not in article.text
    assert article.title
    assert article.published is not None and article.published.year == 2026


async def test_article_is_fetched_through_a_redirect(httpserver: HTTPServer, client: FeedClient) -> None:
    # what a news.google.com/rss/articles/… link does: a redirect to the publisher's page
    httpserver.expect_request("/rss/articles/CBMi123").respond_with_response(
        Response(status=302, headers={"Location": httpserver.url_for("/world/2026/shells")})
    )
    httpserver.expect_request("/world/2026/shells").respond_with_data(
        (ARTICLES / "en.html").read_bytes(), content_type="text/html; charset=utf-8"
    )
    result = await fetch_article(client, httpserver.url_for("/rss/articles/CBMi123"), SETTINGS)
    assert result.article is not None, result.error
    assert result.article.url == httpserver.url_for("/world/2026/shells")
    assert "port of Rajin" in result.article.text


def _scripts_page() -> bytes:
    scripts = "".join(f"<script>var s{i} = 'North Korea Russia troops {i}'; track({i});</script>" for i in range(3000))
    return f"<html><head>{scripts}</head><body><div id='app'></div>{scripts}</body></html>".encode()


# (name, how the server answers, what the error says)
FAILURES = [
    ("404", lambda: Response("gone", status=404, content_type="text/html"), "HTTP 404"),
    ("20 MB page", lambda: Response(b"<p>" + b"a " * 10_000_000 + b"</p>", content_type="text/html"), "body over"),
    (
        "gzip bomb",
        lambda: Response(
            gzip.compress(b"<p>" + b"\0" * 30_000_000), content_type="text/html", headers={"Content-Encoding": "gzip"}
        ),
        "body over",
    ),
    ("page of scripts", lambda: Response(_scripts_page(), content_type="text/html"), "no article text"),
    ("consent wall", lambda: Response("<html><body><p>Before you continue</p></body></html>"), "too little text"),
    ("PDF", lambda: Response(b"%PDF-1.7 ...", content_type="application/pdf"), "not an HTML page"),
    (
        "bad gzip",
        lambda: Response(b"not gzip", content_type="text/html", headers={"Content-Encoding": "gzip"}),
        "decoded",
    ),
]


@pytest.mark.parametrize(("name", "answer", "error"), FAILURES, ids=[f[0] for f in FAILURES])
async def test_a_bad_article_page_is_an_error_not_a_crash(
    httpserver: HTTPServer, client: FeedClient, name: str, answer: object, error: str
) -> None:
    assert callable(answer)
    httpserver.expect_request("/bad").respond_with_response(answer())
    httpserver.expect_request("/good").respond_with_data((ARTICLES / "ru.html").read_bytes(), content_type="text/html")
    started = time.perf_counter()
    result = await fetch_article(client, httpserver.url_for("/bad"), SETTINGS)
    assert result.article is None
    assert result.error is not None and error in result.error
    assert time.perf_counter() - started < 10  # bounded, whatever the page
    healthy = await fetch_article(client, httpserver.url_for("/good"), SETTINGS)  # the neighbour is unaffected
    assert healthy.article is not None and "Шойгу" in healthy.article.text


async def test_a_slow_article_times_out(httpserver: HTTPServer, client: FeedClient) -> None:
    def slow(request: Request) -> Response:
        time.sleep(1.5)
        return Response((ARTICLES / "en.html").read_bytes(), content_type="text/html")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    result = await fetch_article(client, httpserver.url_for("/slow"), SETTINGS)
    assert result.article is None and result.error is not None and "timed out" in result.error


async def test_private_addresses_are_refused_for_articles_too(client: FeedClient) -> None:
    guarded = PollSettings(timeout=1.0, allow_private_urls=False)
    result = await fetch_article(client, "http://127.0.0.1:9/article", guarded)
    assert result.article is None and result.error is not None and "private" in result.error
