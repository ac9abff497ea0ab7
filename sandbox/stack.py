"""The embedded local stack: the AWS endpoint (moto) and the Cloud API emulator, each a real
process on a free loopback port. Used by ``make demo``, ``campaign-sandbox up``, the
integration tests and the chaos suite; ``env()`` is everything the producer and consumers need
to use it. ``ApiProcess`` runs the operator API (``python -m api``) against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sandbox.cloudapi.decisions import SANDBOX_TOKEN

SANDBOX_PHONE_NUMBER_ID = "100000000000001"
READY_TIMEOUT_S = 60.0


class StackError(RuntimeError):
    pass


def _spawn(
    args: Sequence[str],
    ready_file: Path,
    log: Path,
    env: Mapping[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``python ARGS --ready-file F`` and wait (bounded) for F's ``{"url": ...}``.
    The child gets ``env`` (this process's environment when None)."""
    ready_file.unlink(missing_ok=True)  # a file left by an earlier run names a dead port
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, *args, "--ready-file", str(ready_file)],
            stdout=subprocess.DEVNULL,
            stderr=out,
            env=dict(os.environ if env is None else env) | {"PYTHONUNBUFFERED": "1"},
        )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if ready_file.exists() and ready_file.read_text().strip():
            return proc, str(json.loads(ready_file.read_text())["url"])
        if proc.poll() is not None:
            raise StackError(f"{args[1]} exited with {proc.returncode}: see {log}")
        time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=5)
    raise StackError(f"{args[1]} did not start within {READY_TIMEOUT_S:.0f} s: see {log}")


def stop_processes(procs: Sequence[subprocess.Popen[bytes]], timeout_s: float = 10.0) -> None:
    """SIGTERM each one still running, then wait for all (bounded); SIGKILL what outlives it."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


class CloudApiProcess:
    """Only the Cloud API emulator, as its own process (benchmarks pair it with in-memory
    AWS adapters)."""

    def __init__(
        self,
        workdir: Path,
        *,
        rules: Sequence[Mapping[str, Any]] = (),
        seed: int = 1,
        args: Sequence[str] = (),
    ) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        rules_file = workdir / "rules.json"
        rules_file.write_text(json.dumps(list(rules)))
        self._args = [
            "-m", "sandbox.cloudapi", "--port", "0", "--token", SANDBOX_TOKEN,
            "--seed", str(seed), "--rules-file", str(rules_file), *args,
        ]  # fmt: skip
        self._proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def __enter__(self) -> CloudApiProcess:
        self._proc, self.url = _spawn(
            self._args, self.workdir / "cloudapi.ready", self.workdir / "cloudapi.log"
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)


class ApiProcess:
    """The operator API and its console (``python -m api``) as its own process, configured by
    ``env`` (the stack's ``env()``, the table and queue names, ``OPERATOR_API_KEYS``)."""

    def __init__(
        self, workdir: Path, env: Mapping[str, str], *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._env = dict(env)
        self._args = ["-m", "api", "--host", host, "--port", str(port)]
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    @property
    def log(self) -> Path:
        return self.workdir / "api.log"

    def start(self) -> ApiProcess:
        self.proc, self.url = _spawn(self._args, self.workdir / "api.ready", self.log, self._env)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_processes([self.proc])

    def __enter__(self) -> ApiProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LocalStack:
    def __init__(
        self,
        workdir: Path | None = None,
        *,
        rules: Sequence[Mapping[str, Any]] = (),
        seed: int = 1,
        cloudapi_args: Sequence[str] = (),
    ) -> None:
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="campaign-stack-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._rules = list(rules)
        self._seed = seed
        self._cloudapi_args = list(cloudapi_args)
        self._procs: list[subprocess.Popen[bytes]] = []
        self.aws_url = ""
        self.cloudapi_url = ""

    def start(self) -> LocalStack:
        try:
            proc, self.aws_url = _spawn(
                ["-m", "sandbox.aws", "--port", "0"],
                self.workdir / "aws.ready",
                self.workdir / "aws.log",
            )
            self._procs.append(proc)
            args = ["-m", "sandbox.cloudapi", "--port", "0", "--token", SANDBOX_TOKEN]
            args += ["--seed", str(self._seed), *self._cloudapi_args]
            if self._rules:
                rules_file = self.workdir / "rules.json"
                rules_file.write_text(json.dumps(self._rules))
                args += ["--rules-file", str(rules_file)]
            proc, self.cloudapi_url = _spawn(
                args, self.workdir / "cloudapi.ready", self.workdir / "cloudapi.log"
            )
            self._procs.append(proc)
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def processes(self) -> tuple[subprocess.Popen[bytes], ...]:
        """The running children: the AWS endpoint, then the emulator."""
        return tuple(self._procs)

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.aws_url,
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",  # moto accepts any credentials
            "META_API_BASE_URL": self.cloudapi_url,
            "META_ACCESS_TOKEN": SANDBOX_TOKEN,
            "META_PHONE_NUMBER_ID": SANDBOX_PHONE_NUMBER_ID,
        }

    def stop(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self._procs.clear()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
