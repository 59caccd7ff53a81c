"""CSS selectors and XPath expressions for page sources, compiled once.

Both config validation (floor 1: a bad selector is a config problem with its line) and the page watcher
(floor 2: applying it) need the same compiled form, so it lives here, below both. CSS goes through
cssselect's translation to XPath 1.0 (lxml.cssselect), so one engine (libxml2's XPath) runs both kinds and
a CSS selector and its XPath spelling select exactly the same elements.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cssselect import SelectorError
from lxml import etree
from lxml.cssselect import CSSSelector

Selector = Callable[[Any], list[Any]]


def compile_selector(text: str, *, xpath: bool = False) -> Selector:
    """The compiled selector; ValueError says what is wrong with ``text``."""
    if not text.strip():
        raise ValueError("empty selector")
    try:
        if xpath:
            expression = etree.XPath(text)
            return lambda element: _as_list(expression(element))
        css = CSSSelector(text, translator="html")
        return lambda element: list(css(element))
    except SelectorError as exc:
        raise ValueError(f"not a CSS selector: {text!r} ({exc})") from None
    except etree.XPathSyntaxError as exc:
        raise ValueError(f"not an XPath expression: {text!r} ({exc})") from None


def _as_list(result: object) -> list[Any]:
    if isinstance(result, list):
        return result
    if result is None or result == "":
        return []
    return [result]  # a string, number or boolean (e.g. "string(./h2)")


def selector_problem(text: object, *, xpath: bool = False) -> str | None:
    """Why ``text`` is not a usable selector, or None."""
    if not isinstance(text, str):
        return f"must be a {'XPath expression' if xpath else 'CSS selector'} string, got {text!r}"
    try:
        compile_selector(text, xpath=xpath)
    except ValueError as exc:
        return str(exc)
    return None
