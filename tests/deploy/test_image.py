"""The container image, proven without a container engine.

CI has no Docker. The Dockerfile's build stage is replayed here: its RUN and COPY steps run
in order in a temporary directory standing in for the image's filesystem (``/src`` and
``/opt/venv`` mapped below it), the COPY sources taken from the build context that
.dockerignore leaves. Then the consumer is started from the resulting virtualenv against the
local stack, answers the image's own HEALTHCHECK command, sends a campaign, and drains on
SIGTERM. (One deliberate difference: pip may use its download cache here; with
``--require-hashes`` it installs the same files either way.)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from campaigns.domain.exitcodes import EXIT_CONFIG
from campaigns.domain.models import CampaignStatus
from tests.deploy.dockerfile import (
    Stage,
    build_context,
    is_ignored,
    parse_dockerfile,
    parse_dockerignore,
    parse_env,
)
from tests.deploy.support import ROOT
from tests.harness import Harness, valid_numbers, wait_until

DOCKERFILE = ROOT / "Dockerfile"
PINNED_BASE = re.compile(r"^python:3\.11\.\d+-slim-bookworm$")
INSTALL_TIMEOUT_S = 300


def _stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


def _final() -> Stage:
    return _stages()[-1]


def _context() -> list[str]:
    return build_context(ROOT, parse_dockerignore((ROOT / ".dockerignore").read_text()))


def _healthcheck_argv() -> list[str]:
    check = _final().last("HEALTHCHECK")
    assert check is not None
    argv = check.args[check.args.index("CMD") + len("CMD") :].strip()
    parsed = json.loads(argv)
    assert isinstance(parsed, list)
    return [str(word) for word in parsed]


# -- the Dockerfile itself -------------------------------------------------------------------


def test_every_stage_uses_the_same_version_pinned_slim_base() -> None:
    bases = {stage.base for stage in _stages()}
    assert len(bases) == 1, bases
    assert PINNED_BASE.match(bases.pop())


def test_the_final_stage_runs_the_consumer_as_a_non_root_user_with_a_healthcheck() -> None:
    final = _final()
    user = final.last("USER")
    assert user is not None
    uid, _, gid = user.args.partition(":")
    assert uid.isdigit(), "a numeric uid, so runAsNonRoot can verify it"
    assert int(uid) >= 1000
    assert gid.isdigit()
    assert int(gid) >= 1000
    stop = final.last("STOPSIGNAL")
    assert stop is not None
    assert stop.args == "SIGTERM"
    cmd = final.last("CMD")
    assert cmd is not None
    assert cmd.exec_form() == ["campaign-consumer"]
    assert final.last("ENTRYPOINT") is None, "campaign-producer must be usable as the command"
    assert "/healthz" in " ".join(_healthcheck_argv())
    env: dict[str, str] = {}
    for instruction in final.all("ENV"):
        env |= parse_env(instruction)
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert env["PYTHONDONTWRITEBYTECODE"] == "1", "the root filesystem is read-only"


def test_the_final_stage_gets_only_the_built_virtualenv_and_installs_nothing() -> None:
    final = _final()
    copies = [i.flags_and_words() for i in final.all("COPY") + final.all("ADD")]
    assert copies == [({"from": "build"}, ["/opt/venv", "/opt/venv"])]
    for run in final.all("RUN"):
        assert not re.search(r"\b(apt-get|apk|pip|gcc|make)\b", run.args), run.args


def test_the_image_holds_neither_the_sandbox_nor_the_tests() -> None:
    build = _stages()[0]
    sources = [words[:-1] for flags, words in (i.flags_and_words() for i in build.all("COPY"))]
    copied = {src for group in sources for src in group}
    assert copied == {
        "requirements/runtime.txt",
        "pyproject.toml",
        "README.md",
        "campaigns",
        "consumer",
        "producer",
        "api",
        "webhooks",
    }
    context = _context()
    assert not [f for f in context if f.split("/")[0] in {"sandbox", "tests", "deploy", ".venv"}]
    for source in copied:
        assert any(f == source or f.startswith(source + "/") for f in context), (
            f"COPY {source}: excluded by .dockerignore, the build would fail"
        )


def test_dockerignore_keeps_the_build_context_to_what_is_copied() -> None:
    rules = parse_dockerignore((ROOT / ".dockerignore").read_text())
    assert is_ignored("tests/deploy/test_image.py", rules)
    assert is_ignored("sandbox/aws.py", rules)
    assert is_ignored(".venv/bin/python", rules)
    assert is_ignored("campaigns/__pycache__/settings.cpython-311.pyc", rules)
    assert not is_ignored("campaigns/settings.py", rules)
    assert not is_ignored("requirements/runtime.txt", rules)
    assert is_ignored("requirements/dev.txt", rules)


# -- the install steps, replayed -------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    """The replayed image: its filesystem root and the virtualenv's bin directory."""

    root: Path
    bin: Path


def _replay_build_stage(root: Path) -> Image:
    """Run the build stage's COPY and RUN steps with container paths mapped under ``root``."""
    context_files = set(_context())
    mapping = {"/opt/venv": root / "opt" / "venv", "/src": root / "src"}

    def host(path: str, cwd: Path) -> Path:
        for container, local in mapping.items():
            if path == container or path.startswith(container + "/"):
                return local / path[len(container) :].lstrip("/")
        return cwd / path

    shims = root / "shims"  # the base image's `python`
    shims.mkdir(parents=True)
    (shims / "python").symlink_to(getattr(sys, "_base_executable", sys.executable))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{shims}:{env.get('PATH', '/usr/bin:/bin')}"
    cwd = root
    for instruction in _stages()[0].instructions:
        if instruction.keyword == "WORKDIR":
            cwd = host(instruction.args, cwd)
            cwd.mkdir(parents=True, exist_ok=True)
        elif instruction.keyword == "ENV":
            env |= {k: v for k, v in parse_env(instruction).items() if k != "PIP_NO_CACHE_DIR"}
        elif instruction.keyword == "COPY":
            flags, words = instruction.flags_and_words()
            assert not flags, f"line {instruction.line}: unexpected {flags}"
            *sources, target = words
            into_dir = len(sources) > 1 or target.endswith("/") or target in {".", "./"}
            for source in sources:
                _copy(source, host(target, cwd), into_dir, context_files)
        elif instruction.keyword == "RUN":
            _run_step(instruction.args, mapping, cwd, env)
        else:
            raise AssertionError(f"line {instruction.line}: cannot replay {instruction.keyword}")
    return Image(root=root, bin=mapping["/opt/venv"] / "bin")


def _run_step(command: str, mapping: dict[str, Path], cwd: Path, env: dict[str, str]) -> None:
    """Docker's RUN, with the container paths mapped to their places under the root."""
    mapped = command
    for container, local in mapping.items():
        mapped = mapped.replace(container, str(local))
    done = subprocess.run(
        ["/bin/sh", "-c", mapped],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, f"RUN {command}\n{done.stdout}\n{done.stderr}"


def _copy(source: str, dest: Path, into_dir: bool, context_files: set[str]) -> None:
    """Docker's COPY: a file lands at ``dest`` (or inside it, for a directory target); a
    directory's contents land inside ``dest``. Only files the build context holds exist."""
    files = sorted(f for f in context_files if f == source or f.startswith(source + "/"))
    assert files, f"COPY {source}: not in the build context"
    for file in files:
        if file == source:
            out = dest / Path(source).name if into_dir else dest
        else:
            out = dest / file[len(source) + 1 :]
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / file, out)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    return _replay_build_stage(tmp_path_factory.mktemp("image"))


def _runtime_pins() -> set[str]:
    text = (ROOT / "requirements" / "runtime.txt").read_text()
    return {m.group(1).lower() for m in re.finditer(r"^([A-Za-z0-9_.-]+)==", text, re.M)}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_virtualenv_holds_exactly_the_pinned_runtime_set_and_the_app(image: Image) -> None:
    listing = subprocess.run(
        [
            str(image.bin / "python"),
            "-c",
            "import importlib.metadata as m, json; "
            "print(json.dumps(sorted({d.metadata['Name'] for d in m.distributions()})))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=image.root,
        timeout=60,
    )
    installed = {_normalise(name) for name in json.loads(listing.stdout)}
    expected = {_normalise(name) for name in _runtime_pins()} | {"campaign-executor"}
    assert installed == expected, "pip (a build tool) is uninstalled; nothing else is extra"
    assert not (image.bin / "pip").exists()


def test_the_installed_app_has_no_sandbox_or_tests_and_imports_from_the_venv(
    image: Image,
) -> None:
    probe = subprocess.run(
        [
            str(image.bin / "python"),
            "-c",
            "import importlib.util as u, json, campaigns, consumer, producer; "
            "print(json.dumps([campaigns.__file__, u.find_spec('sandbox') is None, "
            "u.find_spec('tests') is None]))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=image.root,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    location, no_sandbox, no_tests = json.loads(probe.stdout)
    assert str(location).startswith(str(image.root / "opt" / "venv"))
    assert no_sandbox
    assert no_tests


def test_a_bad_setting_exits_78_with_one_line(image: Image) -> None:
    done = subprocess.run(
        [str(image.bin / "campaign-consumer")],
        env={"PATH": f"{image.bin}:/usr/bin:/bin", "DAILY_CAP": "-1"},
        capture_output=True,
        text=True,
        cwd=image.root,
        timeout=60,
        check=False,
    )
    assert done.returncode == EXIT_CONFIG
    assert len(done.stderr.strip().splitlines()) == 1
    assert "DAILY_CAP" in done.stderr


def test_the_producer_entry_point_is_in_the_same_image(image: Image) -> None:
    done = subprocess.run(
        [str(image.bin / "campaign-producer"), "--help"],
        capture_output=True,
        text=True,
        cwd=image.root,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert "reconcile" in done.stdout


def test_the_webhook_receiver_is_in_the_same_image_and_serves_only_its_paths_publicly(
    image: Image, harness: Harness
) -> None:
    """``campaign-webhooks`` from the image, on the local stack's receipts queue: /healthz and
    /readyz on the public port, an unsigned POST refused, /metrics only on the metrics port."""
    env = {k: v for k, v in harness.env.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env |= {
        "PATH": f"{image.bin}:/usr/bin:/bin",
        "META_APP_SECRET": "image-test-secret",
        "META_WEBHOOK_VERIFY_TOKEN": "image-test-token",
    }
    ready = harness.workdir / "image-webhooks.ready"
    log = harness.workdir / "image-webhooks.log"
    argv = [str(image.bin / "campaign-webhooks"), "--port", "0", "--metrics-port", "0"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*argv, "--ready-file", str(ready)], env=env, stdout=out, stderr=out, cwd=image.root
        )
    try:
        assert wait_until(lambda: ready.exists() or proc.poll() is not None, timeout_s=60)
        assert ready.exists(), log.read_text()[-2000:]
        urls = json.loads(ready.read_text())
        url, metrics_url = urls["url"], urls["metricsUrl"]
        assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
        assert requests.get(f"{url}/readyz", timeout=10).status_code == 200
        assert requests.post(f"{url}/webhooks/whatsapp", data=b"{}", timeout=5).status_code == 401
        assert requests.get(f"{url}/metrics", timeout=5).status_code == 404
        metrics = requests.get(f"{metrics_url}/metrics", timeout=5).text
        assert 'campaign_webhook_requests_total{outcome="bad_signature"} 1.0' in metrics
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=40) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_the_api_entry_point_is_in_the_same_image_and_serves(
    image: Image, harness: Harness
) -> None:
    env = {k: v for k, v in harness.env.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env |= {"PATH": f"{image.bin}:/usr/bin:/bin", "OPERATOR_API_KEYS": "ops:image-test-key"}
    ready = harness.workdir / "image-api.ready"
    log = harness.workdir / "image-api.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(image.bin / "campaign-api"), "--port", "0", "--ready-file", str(ready)],
            env=env,
            stdout=out,
            stderr=out,
            cwd=image.root,
        )
    try:
        assert wait_until(lambda: ready.exists() or proc.poll() is not None, timeout_s=60)
        assert ready.exists(), log.read_text()[-2000:]
        url = json.loads(ready.read_text())["url"]
        assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
        assert requests.get(f"{url}/openapi.json", timeout=5).status_code == 200
        assert requests.get(f"{url}/api/campaigns", timeout=5).status_code == 401
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=40) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def consumer_from_image(image: Image, harness: Harness) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in harness.env.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env |= {"PATH": f"{image.bin}:/usr/bin:/bin", "SHUTDOWN_TIMEOUT_S": "10"}
    log = harness.workdir / "image-consumer.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(image.bin / "campaign-consumer")],
            env=env,
            stdout=out,
            stderr=out,
            cwd=image.root,
        )
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


def _configured_port(log: Path) -> int | None:
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"consumer.configured"' in line:
            return int(json.loads(line)["metrics_port"])
    return None


def _healthcheck(image: Image, port: int) -> int:
    argv = _healthcheck_argv()
    assert argv[0] == "python"
    return subprocess.run(
        [str(image.bin / "python"), *argv[1:]],
        env={"METRICS_PORT": str(port), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=30,
        check=False,
    ).returncode


def test_the_consumer_from_the_image_serves_health_sends_and_drains_on_sigterm(
    image: Image, harness: Harness, consumer_from_image: subprocess.Popen[bytes]
) -> None:
    log = harness.workdir / "image-consumer.log"
    assert wait_until(lambda: _configured_port(log) is not None, timeout_s=30), log.read_text()
    port = _configured_port(log)
    assert port is not None
    assert wait_until(
        lambda: requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200,
        timeout_s=20,
    )
    assert _healthcheck(image, port) == 0, "the image's HEALTHCHECK passes"

    phones = valid_numbers(3, start=500)
    campaign_id = harness.campaign_with(phones)
    assert wait_until(
        lambda: harness.campaign(campaign_id).status is CampaignStatus.COMPLETED, timeout_s=60
    )
    assert sorted(m.to for m in harness.accepted()) == sorted(phones)

    consumer_from_image.send_signal(signal.SIGTERM)
    assert consumer_from_image.wait(timeout=20) == 0
    assert "consumer.stopped" in log.read_text()
    assert _healthcheck(image, port) != 0, "with the consumer gone the HEALTHCHECK fails"
