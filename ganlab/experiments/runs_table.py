"""A stored table of measured runs, one row per run (keyed by its label): what
:mod:`~ganlab.experiments.stylegan_runs` and :mod:`~ganlab.experiments.stargan_runs` write and
the lectures print. Each row says which weights were measured and the command that trained
them; re-measuring a label replaces its row and keeps the others."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ganlab.atomic import atomic_write_text


def read(table: Path) -> dict:
    """The stored table, or an empty one ``{"rows": []}`` when there is none yet."""
    table = Path(table)
    return json.loads(table.read_text()) if table.is_file() else {"rows": []}


def write_row(table: Path, doc: dict, row: dict) -> dict:
    """Put ``row`` into ``doc`` in place of a row of the same label and write ``doc`` to
    ``table`` atomically (a failed write never destroys the last good table). -> the row."""
    doc["rows"] = [r for r in doc["rows"] if r["label"] != row["label"]] + [row]
    atomic_write_text(Path(table), json.dumps(doc, indent=1) + "\n")
    return row


def main(module, what: str, n_help: str, default_n: int, argv: list[str] | None) -> int:
    """``python -m <module>``: measure one run's weights and store its row in the module's
    ``TABLE`` (or ``--table``) with ``module.add_row``; prints the row as JSON."""
    name = module.__spec__.name if module.__spec__ else module.__name__  # not "__main__"
    p = argparse.ArgumentParser(prog=f"python -m {name}")
    p.add_argument("--label", required=True, help="the row's name in the table")
    p.add_argument("--weights", required=True, help=f"{what}'s weights or checkpoint")
    p.add_argument("--command", required=True, help="the command that trained it")
    p.add_argument("--note", default="")
    p.add_argument("--n", type=int, default=default_n, help=f"{n_help} (default {default_n})")
    p.add_argument("--table", type=Path, default=module.TABLE)
    args = p.parse_args(argv)
    row = module.add_row(args.table, args.label, args.weights, args.command, args.note, args.n)
    print(json.dumps(row))
    return 0
