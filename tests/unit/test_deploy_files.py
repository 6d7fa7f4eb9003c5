"""The deployment files hold together, checked without a Docker engine.

- docker-compose.yml is rendered by Debian's `docker-compose config` (installed by `make deploy-deps`,
  a prerequisite of `make test`): it must render with the secrets given, refuse to render without
  each of them, and describe the topology docs/deploying.md promises.
- Every `frontdesk ...` command the image, the compose file, deploy/bootstrap.sh and
  docs/deploying.md run must parse with the console script's own parser, so a command the wheel
  does not have fails here rather than on an operator's machine.
- The Dockerfile builds a wheel in one stage and installs only that wheel, as a non-root user, in
  the last; the proxy streams the live timeline unbuffered.
- The files the guide's route B (the wheel on a Debian host, no checkout) writes with heredocs say
  the same as their originals in deploy/: the router config, and nginx's proxy.conf inside a site
  file that gives it what it needs on Debian 12's nginx 1.22.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from repo_paths import REPO_ROOT
from sqlmodel import Session, select

from orchestrator.cli.main import build_parser
from orchestrator.db import make_engine, migrate
from orchestrator.models import Membership, User
from orchestrator.settings import PLACEHOLDER_SECRETS, Settings
from orchestrator.web.tasks import router as web_tasks_router

COMPOSE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
DEPLOY = REPO_ROOT / "deploy"
BOOTSTRAP = DEPLOY / "bootstrap.sh"
GUIDE = REPO_ROOT / "docs" / "deploying.md"

# What the compose file refuses to start without; the values are sentinels the tests look for.
REQUIRED_SECRETS = {
    "POSTGRES_PASSWORD": "pg-superuser-sentinel",
    "FRONTDESK_DB_PASSWORD": "frontdesk-db-sentinel",
    "TEMPORAL_DB_PASSWORD": "temporal-db-sentinel",
    "FRONTDESK_ROUTER_API_KEY": "router-key-sentinel",
    "OPENAI_API_KEY": "provider-key-sentinel",
}
# Secrets that may be absent, and why that is safe.
OPTIONAL_SECRETS = {
    "FRONTDESK_BOOTSTRAP_ADMIN_PASSWORD": "needed only to create the first admin; bootstrap.sh refuses without it",
    "FRONTDESK_NOTIFY_WEBHOOK_SECRET": "no webhook, no secret; the worker refuses a webhook URL without one",
}
# FRONTDESK_* names the compose file and the guide use that are not settings of the Python package.
COMPOSE_ONLY = {
    "FRONTDESK_BOOTSTRAP_TENANT",
    "FRONTDESK_BOOTSTRAP_TENANT_NAME",
    "FRONTDESK_BOOTSTRAP_ADMIN_EMAIL",
    "FRONTDESK_BOOTSTRAP_ADMIN_PASSWORD",
    "FRONTDESK_DB_PASSWORD",
    "FRONTDESK_IMAGE",
    "FRONTDESK_PROXY_SITE",
    "FRONTDESK_HTTP_PORT",
    "FRONTDESK_HTTPS_PORT",
    "FRONTDESK_TLS_DIR",
}
SECRET_NAME = re.compile(r"PASSWORD|_PWD$|SECRET|_KEY$|TOKEN")


# --- docker-compose config -----------------------------------------------------------------------


def compose_config(env: dict[str, str], tmp: Path, *overrides: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is not installed: `make deploy-deps` installs Debian's package"
    empty = tmp / "empty.env"  # never read an operator's .env from the checkout
    empty.write_text("")
    files = [arg for path in (COMPOSE, *overrides) for arg in ("-f", str(path))]
    return subprocess.run(
        [binary, "--env-file", str(empty), *files, "config"],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    done = compose_config(REQUIRED_SECRETS, tmp_path_factory.mktemp("compose"))
    assert done.returncode == 0, f"docker-compose config failed:\n{done.stderr}"
    config = yaml.safe_load(done.stdout)
    assert isinstance(config, dict) and config.get("services"), done.stdout
    return config


@pytest.fixture(scope="module")
def services(rendered: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return rendered["services"]


@pytest.mark.parametrize("missing", sorted(REQUIRED_SECRETS))
def test_compose_refuses_to_render_without_each_secret(missing: str, tmp_path: Path) -> None:
    env = {k: v for k, v in REQUIRED_SECRETS.items() if k != missing}
    done = compose_config(env, tmp_path)
    assert done.returncode != 0, f"docker-compose config rendered without {missing}"
    assert f"set {missing}" in done.stderr, done.stderr


def test_the_guides_policy_override_renders(tmp_path: Path) -> None:
    """The docker-compose.override.yml the guide shows mounts one policy folder into every API
    process and worker and names it in FRONTDESK_POLICIES_DIR."""
    blocks = re.findall(r"```yaml\n(# docker-compose\.override\.yml\n.*?)```", GUIDE.read_text(), flags=re.S)
    assert len(blocks) == 1, "the guide shows one docker-compose.override.yml"
    override = tmp_path / "docker-compose.override.yml"
    override.write_text(blocks[0])
    done = compose_config(REQUIRED_SECRETS, tmp_path, override)
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    for name in ("api", "worker"):
        folder = services[name]["environment"]["FRONTDESK_POLICIES_DIR"]
        assert any(str(v).endswith(f":{folder}:ro") for v in services[name]["volumes"]), name
        assert services[name]["environment"]["FRONTDESK_DATABASE_URL"], (
            "the override keeps the shared settings"
        )


def test_no_secret_has_a_default() -> None:
    text = COMPOSE.read_text()
    refs = re.findall(r"\$\{(\w+)(:?[-?])?", text)
    assert refs, "the compose file names no variable at all"
    loose = sorted(
        {
            name
            for name, op in refs
            if SECRET_NAME.search(name) and op != ":?" and name not in OPTIONAL_SECRETS
        }
    )
    assert loose == [], (
        f"secrets without ${{NAME:?message}} (compose must refuse to start without them): {loose}"
    )


def test_every_secret_value_comes_from_the_environment(services: dict[str, dict[str, Any]]) -> None:
    """No service gets a secret written in the file: each is a sentinel given to compose, or empty
    where OPTIONAL_SECRETS says why that is safe."""
    wrong = []
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            value = "" if value is None else str(value)
            if key == "FRONTDESK_DATABASE_URL":
                value = urlsplit(value).password or ""
            elif not SECRET_NAME.search(key):
                continue
            if value == "" and key in OPTIONAL_SECRETS:
                continue
            if value not in REQUIRED_SECRETS.values() or value in PLACEHOLDER_SECRETS:
                wrong.append(f"{name}: {key}={value!r}")
    assert wrong == []


def _instances(services: dict[str, dict[str, Any]], command: list[str]) -> int:
    return sum(
        int((s.get("deploy") or {}).get("replicas", s.get("scale", 1)))
        for s in services.values()
        if s.get("command") == command
    )


def _waits_for(service: dict[str, Any], other: str, condition: str) -> bool:
    return (service.get("depends_on") or {}).get(other, {}).get("condition") == condition


def test_two_api_processes_behind_one_proxy_port(services: dict[str, dict[str, Any]]) -> None:
    assert _instances(services, ["frontdesk", "api"]) >= 2
    apis = [s for s in services.values() if s.get("command") == ["frontdesk", "api"]]
    assert all(not s.get("ports") for s in apis), "API replicas publish no port: the proxy is the way in"
    proxy = services["proxy"]
    assert proxy["image"].startswith("nginx:")
    assert proxy.get("ports"), "the proxy publishes the one port"
    mounts = " ".join(str(v) for v in proxy.get("volumes", []))
    assert "deploy/nginx/proxy.conf:/etc/nginx/frontdesk/proxy.conf" in mounts
    assert "deploy/nginx/http.conf:/etc/nginx/conf.d/default.conf" in mounts
    assert proxy.get("healthcheck", {}).get("test"), "the proxy has a healthcheck"


def test_two_workers(services: dict[str, dict[str, Any]]) -> None:
    assert _instances(services, ["frontdesk", "worker"]) >= 2


def test_migrate_runs_first_and_once(services: dict[str, dict[str, Any]]) -> None:
    migrate = services["migrate"]
    assert migrate["command"] == ["frontdesk", "migrate"]
    assert migrate.get("restart") == "no"
    assert _waits_for(migrate, "postgres", "service_healthy")
    waiting = {
        name for name, s in services.items() if _waits_for(s, "migrate", "service_completed_successfully")
    }
    runs_frontdesk = {
        name for name, s in services.items() if s.get("command", [""])[0] == "frontdesk" and name != "migrate"
    }
    assert runs_frontdesk >= {"api", "worker"}
    assert waiting >= runs_frontdesk | {"bootstrap"}


def test_api_and_workers_wait_for_temporal_to_be_ready(services: dict[str, dict[str, Any]]) -> None:
    assert services["temporal"].get("healthcheck", {}).get("test")
    for name in ("api", "worker"):
        assert _waits_for(services[name], "temporal", "service_healthy"), name


def test_bootstrap_runs_the_script_with_the_first_tenant_and_admin(
    services: dict[str, dict[str, Any]],
) -> None:
    bootstrap = services["bootstrap"]
    entrypoint = bootstrap["entrypoint"]
    assert entrypoint[0] == "sh"
    mounts = [str(v) for v in bootstrap.get("volumes", [])]
    assert any(m.startswith(f"{BOOTSTRAP}:{entrypoint[1]}:") for m in mounts), mounts
    assert bootstrap.get("restart") == "no"
    env = bootstrap["environment"]
    for name in ("TENANT", "TENANT_NAME", "ADMIN_EMAIL", "ADMIN_PASSWORD"):
        assert f"FRONTDESK_BOOTSTRAP_{name}" in env
    assert "FRONTDESK_DATABASE_URL" in env


def test_temporal_keeps_its_own_databases_in_the_same_postgres(services: dict[str, dict[str, Any]]) -> None:
    temporal = services["temporal"]
    env = temporal["environment"]
    assert temporal["image"].startswith("temporalio/auto-setup:")
    assert env["DB"] == "postgres12" and env["POSTGRES_SEEDS"] == "postgres"
    assert _waits_for(temporal, "postgres", "service_healthy")
    frontdesk_db = urlsplit(services["api"]["environment"]["FRONTDESK_DATABASE_URL"])
    assert frontdesk_db.hostname == "postgres"
    own = {env["DBNAME"], env["VISIBILITY_DBNAME"]}
    assert len(own) == 2 and frontdesk_db.path.lstrip("/") not in own
    assert env["POSTGRES_USER"] != frontdesk_db.username
    # The init script creates each database for its own role, and compose runs it on a fresh volume.
    init = (DEPLOY / "postgres-init.sh").read_text()
    for database, owner in [(frontdesk_db.path.lstrip("/"), frontdesk_db.username)] + [
        (name, env["POSTGRES_USER"]) for name in sorted(own)
    ]:
        assert f"CREATE DATABASE {database} OWNER {owner};" in init
    mounts = " ".join(str(v) for v in services["postgres"].get("volumes", []))
    assert "deploy/postgres-init.sh:/docker-entrypoint-initdb.d/" in mounts
    assert services["postgres"].get("healthcheck", {}).get("test")
    assert "temporal-ui" in services


def test_every_frontdesk_process_runs_the_same_image_in_production(
    services: dict[str, dict[str, Any]],
) -> None:
    ours = {
        name: s for name, s in services.items() if "FRONTDESK_DATABASE_URL" in (s.get("environment") or {})
    }
    assert set(ours) == {"api", "worker", "migrate", "bootstrap"}
    assert len({s["image"] for s in ours.values()}) == 1
    for name, s in ours.items():
        assert s["environment"]["FRONTDESK_ENVIRONMENT"] == "production", name
        if name != "api":  # only the API serves /readyz, which the image's HEALTHCHECK asks
            assert s.get("healthcheck", {}).get("test") == ["NONE"], name


def test_the_router_serves_the_tiers_with_keys_from_the_environment(
    services: dict[str, dict[str, Any]],
) -> None:
    router = services["router"]
    mounts = " ".join(str(v) for v in router.get("volumes", []))
    assert "deploy/litellm.yaml:/etc/litellm/config.yaml" in mounts
    url = urlsplit(services["api"]["environment"]["FRONTDESK_ROUTER_URL"])
    assert url.hostname == "router" and str(url.port) in router["command"]
    config = yaml.safe_load((DEPLOY / "litellm.yaml").read_text())
    tiers = {m["model_name"]: m["litellm_params"] for m in config["model_list"]}
    assert set(tiers) >= {"tier-frontier", "tier-open", "tier-slm"}
    needed = {p["api_key"] for p in tiers.values()} | {config["general_settings"]["master_key"]}
    assert all(v.startswith("os.environ/") for v in needed), needed
    assert {v.removeprefix("os.environ/") for v in needed} <= set(router["environment"])
    assert router["environment"]["LITELLM_MASTER_KEY"] == REQUIRED_SECRETS["FRONTDESK_ROUTER_API_KEY"]


# --- the bootstrap job -------------------------------------------------------------------------------


@pytest.mark.slow  # about ten runs of the console script
def test_bootstrap_creates_the_first_admin_once_and_then_leaves_them_alone(tmp_path: Path) -> None:
    """deploy/bootstrap.sh with the installed console script on a migrated database, run as compose
    runs it on every `up`: the first run adds the tenant and the admin, later runs change nothing
    (not even the password, when the environment holds another one or none)."""
    url = f"sqlite:///{tmp_path / 'frontdesk.db'}"
    migrate(url)
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "FRONTDESK_ENVIRONMENT": "production",
        "FRONTDESK_ROUTER_API_KEY": REQUIRED_SECRETS["FRONTDESK_ROUTER_API_KEY"],
        "FRONTDESK_DATABASE_URL": url,
        "FRONTDESK_BOOTSTRAP_TENANT": "acme",
        "FRONTDESK_BOOTSTRAP_TENANT_NAME": "Acme Corp",
        "FRONTDESK_BOOTSTRAP_ADMIN_EMAIL": "Ada@Acme.example",
    }

    def bootstrap(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", str(BOOTSTRAP)],
            cwd=tmp_path,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=120,
        )

    def admin() -> tuple[str | None, list[str]]:
        engine = make_engine(url)
        try:
            with Session(engine) as session:
                user = session.exec(select(User).where(User.email == "ada@acme.example")).one()
                roles = session.exec(select(Membership.role).where(Membership.user_id == user.id)).all()
                return user.password_hash, sorted(roles)
        finally:
            engine.dispose()

    refused = bootstrap()  # the admin does not exist yet, and there is no password to give them
    assert refused.returncode != 0 and "FRONTDESK_BOOTSTRAP_ADMIN_PASSWORD" in refused.stderr
    first = bootstrap(FRONTDESK_BOOTSTRAP_ADMIN_PASSWORD="first password 123")
    assert first.returncode == 0, first.stderr
    assert (
        "correct" not in first.stdout + first.stderr and "first password" not in first.stdout + first.stderr
    )
    password_hash, roles = admin()
    assert password_hash and roles == ["admin"]
    for extra in ({"FRONTDESK_BOOTSTRAP_ADMIN_PASSWORD": "another password 456"}, {}):
        again = bootstrap(**extra)
        assert again.returncode == 0, again.stderr
        assert "exists" in again.stdout and "left as it is" in again.stdout
        assert admin() == (password_hash, roles)


# --- the proxy -------------------------------------------------------------------------------------


def _nginx_blocks(text: str, opening: str) -> list[str]:
    """Bodies of the `{ ... }` blocks whose opening line matches `opening` (no nesting inside)."""
    text = re.sub(r"#[^\n]*", "", text)
    return re.findall(opening + r"\s*\{([^{}]*)\}", text)


def test_the_proxy_streams_the_live_timeline_unbuffered() -> None:
    conf = (DEPLOY / "nginx" / "proxy.conf").read_text()
    events = [r for r in web_tasks_router.routes if getattr(r, "name", "") == "web_task_events"]
    assert len(events) == 1
    path = str(getattr(events[0], "path", "")).replace("{task_id}", "tsk_0123abc")
    matching = [
        body
        for pattern, body in re.findall(r"location\s+~\s+(\S+)\s*\{([^{}]*)\}", re.sub(r"#[^\n]*", "", conf))
        if re.search(pattern, path)
    ]
    assert matching, f"no regex location of deploy/nginx/proxy.conf matches {path}"
    assert re.search(r"proxy_buffering\s+off;", matching[0])
    assert re.search(r"proxy_pass\s+\$frontdesk_api;", matching[0])
    # The web UI's CSRF check compares Origin with Host: the proxy must pass the original Host on.
    assert re.search(r"proxy_set_header\s+Host\s+\$http_host;", conf)
    # proxy.conf is the same file with and without Docker: where the API is comes from around it.
    assert not re.search(r"^\s*(set|resolver)\s", _nginx_directives_text(conf), flags=re.M)
    for site in ("http", "https"):
        text = (DEPLOY / "nginx" / f"{site}.conf").read_text()
        assert "include /etc/nginx/frontdesk/proxy.conf;" in text, site
        health = _nginx_blocks(text, r"location\s*=\s*/nginx-health")
        assert health and "return 200" in health[0], site
        # The API replicas through Docker's DNS, set before proxy.conf is included.
        including = text[: text.index("include /etc/nginx/frontdesk/proxy.conf;")]
        assert re.search(r"resolver\s+127\.0\.0\.11\b", including), site
        assert re.search(r"set\s+\$frontdesk_api\s+http://api:8000;", including), site
        assert re.search(r"^map\s+\S+\s+\$frontdesk_scheme\s*\{", text, flags=re.M), site


# --- what route B writes without a checkout --------------------------------------------------------


def _nginx_directives_text(text: str) -> str:
    """nginx configuration without its comments and blank lines (no `#` is quoted in these files)."""
    lines = (re.sub(r"#.*$", "", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def _guide_heredoc(target: str) -> str:
    """The text the guide's shell blocks write to `target` with `cat > target <<'EOF'`, as the
    operator pastes it (the block's list indentation removed)."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", GUIDE.read_text(), flags=re.S):
        block = textwrap.dedent(block)
        found += re.findall(rf"^cat > {re.escape(target)} <<'EOF'\n(.*?)^EOF$", block, flags=re.S | re.M)
    assert len(found) == 1, f"the guide writes {target} {len(found)} times with a quoted heredoc"
    return found[0]


def test_the_guides_router_config_is_deploy_litellm_yaml() -> None:
    """Route B has no deploy/ folder, so the guide writes the router config itself: the same
    models, keys and settings as deploy/litellm.yaml (comments may differ)."""
    written = yaml.safe_load(_guide_heredoc("/etc/frontdesk/litellm.yaml"))
    assert written == yaml.safe_load((DEPLOY / "litellm.yaml").read_text())


def test_the_guides_proxy_conf_is_deploy_proxy_conf() -> None:
    written = _guide_heredoc("/etc/nginx/frontdesk/proxy.conf")
    original = (DEPLOY / "nginx" / "proxy.conf").read_text()
    assert _nginx_directives_text(written) == _nginx_directives_text(original)


def test_the_guides_nginx_site_gives_proxy_conf_what_it_needs_on_nginx_1_22() -> None:
    """The site file of route B (Debian 12, nginx 1.22.1; checked there with `nginx -t`): an
    upstream and the $frontdesk_scheme map in the http{} context, the HTTPS server setting
    $frontdesk_api to the upstream before including proxy.conf, HTTP/2 in the form 1.22 knows."""
    site = _nginx_directives_text(_guide_heredoc("/etc/nginx/sites-available/frontdesk"))
    assert re.search(r"^upstream frontdesk_api \{\nserver 127\.0\.0\.1:8000;", site, flags=re.M)
    assert re.search(r"^map \S+ \$frontdesk_scheme \{\ndefault https;\n\}", site, flags=re.M)
    servers = re.findall(r"^server \{\n(.*?)^\}$", site, flags=re.S | re.M)
    tls = [s for s in servers if "listen 443" in s]
    assert len(tls) == 1
    assert "listen 443 ssl http2;" in tls[0] and "http2 on;" not in site
    assert re.search(
        r"set \$frontdesk_api http://frontdesk_api;\ninclude /etc/nginx/frontdesk/proxy\.conf;", tls[0]
    )
    plain = [s for s in servers if "listen 80;" in s]
    assert len(plain) == 1 and "return 301 https://$host$request_uri;" in plain[0]


# --- commands the image and compose run --------------------------------------------------------------


def _raw_compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _after_frontdesk(words: list[str]) -> list[str]:
    """The arguments of the frontdesk command in `words` (a shell command cut into words)."""
    out: list[str] = []
    for word in words[1:]:
        if word in {"|", "||", "&&", ";", ">", ">>", "<", "2>", "&", ")"}:
            break
        out.append("x" if "$" in word else word)  # a shell variable: any value parses the same
    return out


def _script_commands(text: str) -> list[list[str]]:
    """`frontdesk ...` commands of a POSIX shell script: at the start of a line, after a pipe or
    a list operator, or inside `$( )`. Comment lines are skipped."""
    text = text.replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        for match in re.finditer(r"(?:^\s*|[|;&]\s*|\$\(\s*)(frontdesk\s[^|;&)\n]*)", line):
            commands.append(_after_frontdesk(shlex.split(match.group(1))))
    return commands


# `docker compose run/exec` options that take a value, to find the service name after them.
COMPOSE_OPTIONS_WITH_VALUE = {
    "-e",
    "--env",
    "-u",
    "--user",
    "-w",
    "--workdir",
    "-v",
    "--volume",
    "--name",
    "-l",
}


def _guide_commands(text: str) -> list[list[str]]:
    """`frontdesk ...` commands in the guide's shell blocks: as the command of a line (bare, or a
    path ending in /bin/frontdesk, as in a venv or a systemd `ExecStart=`), after `|`/`&&`/`;`,
    after the service of `docker compose run|exec`, or after the image of `docker run`."""
    commands = []
    for block in re.findall(r"```(?:bash|sh|console)\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s#\s.*$", "", line.strip())
            if not line or line.startswith("#"):
                continue
            lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;<>")
            lexer.whitespace_split = True
            try:
                words = list(lexer)
            except ValueError:  # a line of a multi-line string (python -c "...", SQL): not a command
                continue
            starts = [0] + [i + 1 for i, w in enumerate(words) if w in {"|", "||", "&&", ";"}]
            for start in starts:
                i = start
                if (
                    words[i : i + 2] == ["docker", "compose"]
                    and i + 2 < len(words)
                    and words[i + 2] in {"run", "exec"}
                ):
                    i += 3
                    while i < len(words) and words[i].startswith("-"):
                        i += 2 if words[i] in COMPOSE_OPTIONS_WITH_VALUE else 1
                    i += 1  # the service
                elif words[i : i + 2] == ["docker", "run"] and "frontdesk" in words[i + 2 :]:
                    i = words.index("frontdesk", i + 2)  # the command after the image
                if i < len(words) and (words[i] == "frontdesk" or words[i].endswith("/bin/frontdesk")):
                    commands.append(_after_frontdesk(words[i:]))
    return commands


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for keyword, rest in _dockerfile_instructions():
        if keyword == "FROM":
            stages.append([])
        assert stages, "a Dockerfile instruction before the first FROM"
        stages[-1].append((keyword, rest))
    return stages


def _exec_form(rest: str) -> list[str]:
    value = yaml.safe_load(rest)  # JSON is YAML
    assert isinstance(value, list), f"use the exec (JSON) form: {rest}"
    return [str(v) for v in value]


def _all_commands() -> list[tuple[str, list[str]]]:
    found: list[tuple[str, list[str]]] = []
    for keyword, rest in _stages()[-1]:
        if keyword == "CMD":
            argv = _exec_form(rest)
            if argv[0] == "frontdesk":
                found.append(("Dockerfile CMD", argv[1:]))
    for name, service in _raw_compose()["services"].items():
        for key in ("command", "entrypoint"):
            argv = service.get(key)
            if isinstance(argv, str):
                argv = shlex.split(argv)
            if argv and argv[0] == "frontdesk":
                found.append((f"compose {name}.{key}", [str(a) for a in argv[1:]]))
    found += [("deploy/bootstrap.sh", argv) for argv in _script_commands(BOOTSTRAP.read_text())]
    found += [("docs/deploying.md", argv) for argv in _guide_commands(GUIDE.read_text())]
    return found


COMMANDS = _all_commands()


def test_the_commands_are_found() -> None:
    """The collectors below really find the commands (an empty list would pass vacuously)."""
    where = {w for w, _ in COMMANDS}
    assert {
        "Dockerfile CMD",
        "compose api.command",
        "compose worker.command",
        "compose migrate.command",
    } <= where
    assert ["tenant", "add", "x", "--name", "x"] in [a for w, a in COMMANDS if w == "deploy/bootstrap.sh"]
    guide = [a[:2] for w, a in COMMANDS if w == "docs/deploying.md"]
    for needed in (["migrate"], ["tenant", "add"], ["user", "add"], ["policy", "init"]):
        assert needed in [g[: len(needed)] for g in guide], (
            f"the guide shows no `frontdesk {' '.join(needed)}`"
        )


@pytest.mark.parametrize(("where", "argv"), COMMANDS, ids=[f"{w}: {' '.join(a)}" for w, a in COMMANDS])
def test_every_command_exists_in_the_cli(where: str, argv: list[str]) -> None:
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            args = build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"{where}: `frontdesk {' '.join(argv)}` does not parse ({exc.code}): {errors.getvalue()}")
    assert callable(getattr(args, "func", None)), f"{where}: `frontdesk {' '.join(argv)}` runs nothing"


# --- the Dockerfile ----------------------------------------------------------------------------------


def test_the_first_stage_builds_the_wheel_without_dependencies() -> None:
    stages = _stages()
    assert len(stages) >= 2, "a build stage and a runtime stage"
    runs = " ".join(rest for keyword, rest in stages[0] if keyword == "RUN")
    assert "pip wheel" in runs and "--no-deps" in runs


def test_the_final_stage_installs_only_the_wheel_as_a_non_root_user() -> None:
    final = _stages()[-1]
    assert final[0][1].startswith("python:3.11-slim")
    copies = [rest for keyword, rest in final if keyword in {"COPY", "ADD"}]
    assert copies and all(rest.startswith("--from=") for rest in copies), (
        f"the source tree stays out: {copies}"
    )
    assert all(keyword != "ADD" for keyword, _ in final)
    runs = [rest for keyword, rest in final if keyword == "RUN"]
    assert any(re.search(r"pip install \S+\.whl", r) for r in runs), runs
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users, "the final stage names a USER"
    assert users[-1].split(":")[0] not in {"root", "0"}
    env = " ".join(rest for keyword, rest in final if keyword == "ENV")
    assert "FRONTDESK_API_HOST=0.0.0.0" in env.split()
    healthchecks = [rest for keyword, rest in final if keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1 and "/readyz" in healthchecks[0]
    cmds = [rest for keyword, rest in final if keyword == "CMD"]
    assert _exec_form(cmds[-1]) == ["frontdesk", "api"]


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = {line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", ".frontdesk", ".env", "build", "dist", "tests"} <= ignored


# --- the guide -----------------------------------------------------------------------------------------


def test_the_readme_links_the_guide() -> None:
    assert "docs/deploying.md" in (REPO_ROOT / "README.md").read_text()


def test_every_setting_the_guide_and_compose_name_exists() -> None:
    settings = {f"FRONTDESK_{name.upper()}" for name in Settings.model_fields}
    for path in (GUIDE, COMPOSE, BOOTSTRAP):
        named = set(re.findall(r"\bFRONTDESK_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
        unknown = sorted(named - settings - COMPOSE_ONLY)
        assert unknown == [], f"{path.relative_to(REPO_ROOT)} names settings that do not exist: {unknown}"
