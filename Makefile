# Shortcuts; the README's two commands work without make.
.PHONY: install demo test check lint bench

install:
	python3 -m pip install -e '.[test]'

demo:
	python3 bot.py demo

test:
	python3 -m pytest

lint:
	ruff check . && ruff format --check . && mypy

check:
	python3 bot.py check

bench:
	python3 bench/poll.py && python3 bench/match.py && python3 bench/deliver.py && python3 bench/trend.py && python3 bench/identity.py
