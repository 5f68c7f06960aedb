"""Execute notebooks over and over and count hangs (issue 13: ipykernel 7 lost a request).

A *hang* is a cell that gives no reply within ``--timeout`` seconds while the kernel used
(almost) no CPU in its last 60 s: both sides idle, waiting for each other. A slow cell (the
kernel still working) is counted apart. The kernel is the interpreter running this script
(jupyter_client runs the ``python3`` kernelspec's ``python`` as ``sys.executable``), so run
it with the environment under test, e.g.::

    VENV/bin/python scripts/notebook_hang_check.py --minutes 8 --synthetic short
    VENV/bin/python scripts/notebook_hang_check.py --runs 1 --synthetic long   # 3 x 200 s cells
    GANLAB_PROFILE=cpu VENV/bin/python scripts/notebook_hang_check.py --timeout 900 \\
        notebooks/02_gan_int_cls.ipynb
    VENV/bin/python scripts/notebook_hang_check.py --burst 60   # pipelined shell requests

``short``: 30 cells that each run a 60-step loop with a tqdm (ipywidgets) bar, a display
update and prints, each followed by a trivial cell. ``long``: 3 cells of 200 s (a sleeping
loop with a live tqdm bar), each followed by 5 trivial cells. ``--burst S``: for S seconds,
send 6 shell requests at a time without waiting and count those never answered. One JSON
line per run, then ``SUMMARY``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError

VERSION_CELL = 'import ipykernel\nprint("ipykernel", ipykernel.__version__)'


def synthetic(kind: str) -> nbformat.NotebookNode:
    """The ``short`` or ``long`` synthetic notebook (see the module docstring)."""
    cells = [
        VERSION_CELL,
        "import time, torch\nfrom tqdm.auto import tqdm\nfrom IPython.display import display",
    ]
    if kind == "short":
        for i in range(30):
            cells.append(
                "handle = display('starting', display_id=True)\n"
                "bar = tqdm(range(60), desc='step')\n"
                "x = torch.randn(96, 96)\n"
                "for step in bar:\n"
                "    for _ in range(20):\n"
                "        x = torch.tanh(x @ x.T / 96)\n"
                "    bar.set_postfix(loss=float(x.mean()))\n"
                "    if step % 10 == 0:\n"
                "        handle.update(f'step {step}')\n"
                "        print('step', step, flush=True)"
            )
            cells.append(f"y{i} = {i} * 2\ny{i}")
    else:
        for i in range(3):
            cells.append(
                "bar = tqdm(range(200), desc='training')\n"
                "for step in bar:\n"
                "    time.sleep(1)\n"
                "    bar.set_postfix(loss=step / 7)\n"
                "print('done')"
            )
            cells += [f"y = {i} + {j}\ny" for j in range(5)]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Watch:
    """Samples the kernel's CPU time every 2 s; remembers when it last moved by > 0.05 s."""

    def __init__(self):
        self.pid, self.last_cpu, self.last_busy = None, 0.0, time.monotonic()
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            time.sleep(2)
            pid = self.pid
            try:
                now = cpu_seconds(pid) if pid else None
            except OSError:
                now = None
            if now is not None and now - self.last_cpu > 0.05:
                self.last_cpu, self.last_busy = now, time.monotonic()


def run_once(nb, folder: str, timeout: int, watch: Watch) -> dict:
    """Execute ``nb`` once; ``{"status": "ok" | "hang" | "slow-cell" | "error: ...", ...}``."""
    nb = nbformat.from_dict(nb)
    state = {"cell": None}

    def on_cell_execute(cell, cell_index):
        state["cell"] = cell_index
        if watch.pid is None and client.km is not None:
            watch.pid = client.km.provisioner.pid
            watch.last_cpu, watch.last_busy = cpu_seconds(watch.pid), time.monotonic()

    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        on_cell_execute=on_cell_execute,
        resources={"metadata": {"path": folder}},
    )
    start, outcome = time.monotonic(), {}
    try:
        client.execute()
        outcome["status"] = "ok"
    except CellTimeoutError:
        idle = time.monotonic() - watch.last_busy
        outcome["status"] = "hang" if idle > 60 else "slow-cell"
        outcome["cell"], outcome["kernel_idle_s"] = state["cell"], round(idle)
    except Exception as error:  # noqa: BLE001 - report it and go on
        outcome["status"] = f"error: {type(error).__name__}: {str(error)[:200]}"
        outcome["cell"] = state["cell"]
    outcome["seconds"] = round(time.monotonic() - start, 1)
    texts = [o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    outcome["ipykernel"] = next((t.split()[1] for t in texts if t.startswith("ipykernel ")), "?")
    watch.pid = None
    return outcome


def burst(seconds: float, size: int = 6) -> dict:
    """Pipelined shell requests against one kernel; counts the requests never answered."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    first = kc.execute("import ipykernel; v = ipykernel.__version__", user_expressions={"v": "v"})
    while (msg := kc.get_shell_msg(timeout=60))["parent_header"].get("msg_id") != first:
        pass
    version = msg["content"]["user_expressions"]["v"]["data"]["text/plain"].strip("'")
    bursts = lost = requests = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ids = {kc.execute(f"print({j})") if j % 2 == 0 else kc.kernel_info() for j in range(size)}
        requests += size
        deadline = time.monotonic() + 10
        while ids and time.monotonic() < deadline:
            try:
                msg = kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            except Exception:  # noqa: BLE001 - queue.Empty: the deadline passed
                break
            ids.discard(msg["parent_header"].get("msg_id"))
        while True:
            try:
                kc.get_iopub_msg(timeout=0)
            except Exception:  # noqa: BLE001 - drained
                break
        bursts += 1
        if ids:
            lost += len(ids)
            kc.stop_channels()
            km.shutdown_kernel(now=True)
            km, kc = start_new_kernel(kernel_name="python3")
    kc.stop_channels()
    km.shutdown_kernel(now=True)
    return {"ipykernel": version, "bursts": bursts, "requests": requests, "lost": lost}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="notebooks to execute in turn")
    parser.add_argument("--synthetic", choices=("short", "long"), help="a generated notebook")
    parser.add_argument("--burst", type=float, help="seconds of pipelined requests instead")
    parser.add_argument("--minutes", type=float, default=10, help="stop starting runs after")
    parser.add_argument("--runs", type=int, default=1000, help="at most this many runs")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per cell")
    args = parser.parse_args()
    if args.burst:
        print(json.dumps({"python": sys.executable, **burst(args.burst)}))
        return 0
    books = [(p, nbformat.read(p, as_version=4)) for p in args.notebooks]
    for _, nb in books:  # say which ipykernel ran it
        nb.cells.insert(0, nbformat.v4.new_code_cell(VERSION_CELL, id="hang-check-version"))
    if args.synthetic:
        books.append((f"synthetic-{args.synthetic}", synthetic(args.synthetic)))
    if not books:
        parser.error("give notebooks, --synthetic or --burst")
    watch, runs = Watch(), []
    end = time.monotonic() + 60 * args.minutes
    with tempfile.TemporaryDirectory() as scratch:
        while time.monotonic() < end and len(runs) < args.runs:
            for name, nb in books:
                folder = str(Path(name).resolve().parent) if Path(name).exists() else scratch
                runs.append({"notebook": name, **run_once(nb, folder, args.timeout, watch)})
                print(json.dumps(runs[-1]), flush=True)
    hangs = sum(r["status"] == "hang" for r in runs)
    cells = sum(len([c for c in nb.cells if c.cell_type == "code"]) for _, nb in books)
    print(
        f"SUMMARY python={sys.executable} runs={len(runs)} hangs={hangs} "
        f"code cells per round={cells}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
