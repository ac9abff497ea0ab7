"""Just enough of Docker's build semantics to replay an image's install steps without a
container engine: Dockerfile instructions (continuations, comments, stages, JSON or shell
form) and .dockerignore matching (Go ``filepath.Match`` patterns, ``**``, ``!`` exceptions,
last match wins, a pattern that matches a directory excludes what is inside it)."""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    args: str  # the rest of the line, continuations joined
    line: int

    def exec_form(self) -> list[str] | None:
        """The JSON (exec) form's argv, or None for the shell form."""
        text = self.args.strip()
        if text.startswith("["):
            argv = json.loads(text)
            assert isinstance(argv, list)
            return [str(a) for a in argv]
        return None

    def flags_and_words(self) -> tuple[dict[str, str], list[str]]:
        """``--name=value`` flags (as in COPY --from=build) and the remaining words."""
        flags: dict[str, str] = {}
        words: list[str] = []
        for word in shlex.split(self.args):
            if word.startswith("--") and not words:
                name, _, value = word[2:].partition("=")
                flags[name] = value
            else:
                words.append(word)
        return flags, words


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None


def parse_dockerfile(text: str) -> list[Stage]:
    stages: list[Stage] = []
    for instruction in _instructions(text):
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif instruction.keyword in {"ARG"} and not stages:
            continue  # a global ARG before the first FROM
        else:
            assert stages, f"line {instruction.line}: {instruction.keyword} before FROM"
            stages[-1].instructions.append(instruction)
    return stages


def _instructions(text: str) -> Iterator[Instruction]:
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comments inside a continued instruction are dropped
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        line = pending + stripped
        pending = ""
        keyword, _, args = line.partition(" ")
        yield Instruction(keyword.upper(), args.strip(), start)
    assert not pending, "the Dockerfile ends inside a continued line"


def parse_env(instruction: Instruction) -> dict[str, str]:
    """ENV a=b c=d (the key=value form)."""
    values: dict[str, str] = {}
    for word in shlex.split(instruction.args):
        name, sep, value = word.partition("=")
        assert sep, f"line {instruction.line}: use the ENV key=value form"
        values[name] = value
    return values


# -- .dockerignore --------------------------------------------------------------------------


@dataclass(frozen=True)
class IgnoreRule:
    pattern: re.Pattern[str]
    exception: bool
    text: str


def _translate(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def parse_dockerignore(text: str) -> list[IgnoreRule]:
    rules: list[IgnoreRule] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        line = line[1:].strip() if exception else line
        cleaned = os.path.normpath(line).lstrip("/")
        rules.append(IgnoreRule(_translate(cleaned), exception, cleaned))
    return rules


def is_ignored(path: str, rules: list[IgnoreRule]) -> bool:
    """Docker's rule: each pattern is tried against the path and every parent of it; the
    last pattern that matches decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for rule in rules:
        if any(rule.pattern.match(c) for c in candidates):
            ignored = not rule.exception
    return ignored


def build_context(root: Path, rules: list[IgnoreRule]) -> list[str]:
    """The files `docker build` would send: every file under ``root`` not ignored.
    Directories no exception could reach into are not walked."""
    exceptions = [r.text for r in rules if r.exception]
    files: list[str] = []
    for directory, subdirs, names in os.walk(root):
        rel_dir = os.path.relpath(directory, root)
        prefix = "" if rel_dir == "." else rel_dir + "/"
        kept = []
        for sub in subdirs:
            rel = prefix + sub
            reachable = any(e == rel or e.startswith(rel + "/") or "*" in e for e in exceptions)
            if not is_ignored(rel, rules) or reachable:
                kept.append(sub)
        subdirs[:] = sorted(kept)
        files.extend(
            prefix + name for name in sorted(names) if not is_ignored(prefix + name, rules)
        )
    return files
