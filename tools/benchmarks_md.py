"""Replace one generated section of BENCHMARKS.md (between its BEGIN/END markers), atomically."""

from __future__ import annotations

from pathlib import Path

HEADER = "# BENCHMARKS\n\nEvery figure here is produced by a script in `tools/`; rerun it to check.\n\n"


def markers(name: str, script: str) -> tuple[str, str]:
    return f"<!-- BEGIN {name} ({script}) -->", f"<!-- END {name} -->"


def write_section(path: Path, name: str, script: str, body: str) -> None:
    begin, end = markers(name, script)
    section = f"{begin}\n{body.rstrip()}\n{end}\n"
    text = path.read_text() if path.exists() else HEADER
    if begin in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
