"""Build the GAN Lab website (a Jupyter Book 1 site) offline, from stored notebook outputs.

    python -m ganlab.book build     # -> book/_build/html/index.html
    python -m ganlab.book vendor    # refresh book/_vendor/ from npm (needs the registry)

Run from the repository (the folder holding ``book/``), or pass ``--repo``.

How it works
------------
``book/_toc.yml`` is the one list of pages. An entry that is not a file under ``book/`` is taken
from the repository root at the same relative path, so ``- file: notebooks/02_gan_int_cls``
publishes ``notebooks/02_gan_int_cls.ipynb``; adding a chapter means adding its lecture and its
exercises to the table of contents, nothing else. The builder

1. copies ``book/`` (without ``_build``) and every notebook named in the TOC into a staging
   folder, ``book/_build/src``; a notebook named in the TOC that does not exist is an error;
2. fills the chapter map of the introduction: a chapter whose lecture is in the TOC gets a link,
   the others are marked "coming";
3. in the staged copies only: clears the outputs of exercise notebooks (they are generated from
   the solved notebooks and could show answers), refuses an exercise that still contains
   ``### BEGIN SOLUTION``, and turns a widget view whose state was not stored into its static
   fallback (text, image) instead of a broken widget;
4. runs ``jupyter-book build`` with ``-W -n --keep-going`` (warnings are errors), notebooks are
   not executed (``execute_notebooks: "off"``), output in ``book/_build/html``.

Nothing on the built site loads from the network: MathJax, require.js and the ipywidgets HTML
manager are served from ``book/_vendor/`` (trimmed copies of npm packages, committed; see
``book/_vendor/MANIFEST.json``), published under ``_static/``.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import yaml

from ganlab.chapters import PLAN


def find_repo(start: Path | None = None) -> Path:
    """The clone holding ``book/_toc.yml``: the current folder or a parent, else the package's."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "book" / "_toc.yml").is_file():
            return folder
    return Path(__file__).resolve().parents[1]


REPO = find_repo()
BOOK = REPO / "book"

# The eight chapters of the course (number -> name, world, payoff), from the one chapter list
# (ganlab.chapters.PLAN). The chapter map on the introduction links a chapter as soon as a
# lecture notebook whose name starts with its number ("notebooks/02_...") is in the table of
# contents.
CHAPTERS = {c.number: (c.title, c.world, c.payoff) for c in PLAN}
CHAPTER_MAP_MARKER = "<!-- chapter-map -->"

# npm packages vendored into book/_vendor, and the files kept from each (trimmed to what the
# site uses). MathJax: the single-file "tex-svg-full" component (all TeX extensions built in,
# SVG output, so no font files and no lazy loads; also works when a page is opened as file://).
# Widgets: the AMD embed bundle (base + controls 7 and 8 + output built in) and the Font
# Awesome woff2 files its CSS points at (browsers that read woff2 never ask for the others).
NPM_PACKAGES = ["mathjax@3.2.2", "requirejs@2.3.8", "@jupyter-widgets/html-manager@1.0.15"]
VENDOR_FILES = {
    "mathjax/tex-svg-full.js": "mathjax/es5/tex-svg-full.js",
    "mathjax/LICENSE": "mathjax/LICENSE",
    "requirejs/require.js": "requirejs/require.js",
    "jupyter-widgets/embed-amd.js": "@jupyter-widgets/html-manager/dist/embed-amd.js",
    "jupyter-widgets/LICENSE.txt": "@jupyter-widgets/html-manager/dist/embed.js.LICENSE.txt",
}
VENDOR_GLOBS = {"jupyter-widgets": "@jupyter-widgets/html-manager/dist/*.woff2"}

# Loaded between require.js and embed-amd.js: the widget bundles compute the URL of their
# icon fonts from their requirejs module URL, so point those modules at this folder.
WIDGETS_REQUIRE_CONFIG = """\
// GAN Lab: serve the ipywidgets HTML manager and its fonts from this folder (no CDN).
(function () {
  var src = document.currentScript.src;
  var here = src.slice(0, src.lastIndexOf("/") + 1) + "embed-amd";
  var names = ["base", "base7", "controls", "controls7", "output", "html-manager",
               "html-manager/dist/libembed-amd"];
  var paths = {};
  names.forEach(function (n) { paths["@jupyter-widgets/" + n] = here; });
  require.config({ paths: paths });
  // The widgets typeset their labels with the MathJax 2 call MathJax.Hub.Queue; the site
  // uses MathJax 3, so translate (runs before the widgets render, after MathJax has loaded).
  document.addEventListener("DOMContentLoaded", function () {
    var M = window.MathJax;
    if (!M || M.Hub) return;
    M.Hub = { Queue: function (job) {
      var el = job && job[2];
      if (!M.typesetPromise) return;
      // pages mark <body> mathjax_ignore; a widget label opts back in
      if (el && el.classList) el.classList.add("mathjax_process");
      var ready = (M.startup && M.startup.promise) || Promise.resolve();
      ready.then(function () { return M.typesetPromise(el ? [el] : undefined); });
    } };
  });
})();
"""

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class BookError(RuntimeError):
    """The book cannot be built; the message says what is missing or wrong."""


def _toc_files(node) -> list[str]:
    """Every ``file:`` entry of a sphinx-external-toc structure, in order."""
    out: list[str] = []
    if isinstance(node, dict):
        if "file" in node:
            out.append(str(node["file"]))
        for key in ("root",):
            if key in node:
                out.append(str(node[key]))
        for key in ("parts", "chapters", "sections"):
            for child in node.get(key, []) or []:
                out.extend(_toc_files(child))
    elif isinstance(node, list):
        for child in node:
            out.extend(_toc_files(child))
    return out


def toc_entries(book: Path = BOOK) -> list[str]:
    """The documents listed in ``book/_toc.yml`` (without suffix), root first."""
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    return _toc_files(toc)


def _find_source(entry: str, book: Path, repo: Path) -> Path | None:
    for base in (book, repo):
        for suffix in ("", ".md", ".ipynb"):
            path = base / f"{entry}{suffix}"
            if path.is_file():
                return path
    return None


def _chapter_map(entries: list[str]) -> str:
    lectures = {}
    exercises = {}
    for e in entries:
        m = re.match(r"(notebooks|exercises)/(\d\d)_", e)
        if m:
            (lectures if m.group(1) == "notebooks" else exercises)[int(m.group(2))] = e
    rows = [
        "| # | chapter | world | what you will see | status |",
        "|---|---|---|---|---|",
    ]
    for num, (name, world, payoff) in CHAPTERS.items():
        if num in lectures:
            title = f"[{name}]({lectures[num]}.ipynb)"
            status = "ready"
            if num in exercises:
                status += f" ([exercises]({exercises[num]}.ipynb))"
        else:
            title, status = name, "coming"
        rows.append(f"| {num} | {title} | {world} | {payoff} | {status} |")
    return "\n".join(rows) + "\n"


def _fix_widgets(nb) -> int:
    """Drop widget views whose model state is not stored; return how many were dropped."""
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    dropped = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            view = data.get(WIDGET_VIEW)
            if view is not None and view.get("model_id") not in state:
                del data[WIDGET_VIEW]
                dropped += 1
    return dropped


def _stage_notebook(src: Path, dst: Path, entry: str) -> None:
    nb = nbformat.read(src, as_version=4)
    nb = copy.deepcopy(nb)
    if entry.startswith("exercises/"):
        for cell in nb.cells:
            if "### BEGIN SOLUTION" in cell.source:
                raise BookError(
                    f"{entry} contains '### BEGIN SOLUTION': exercises must be "
                    "generated from solutions/ without the answers"
                )
            if cell.cell_type == "code":
                cell.outputs = []
                cell.execution_count = None
    # The course is Python; a notebook saved without kernel metadata (e.g. fresh from jupytext)
    # would otherwise get no syntax highlighting and a warning per code cell.
    nb.metadata.setdefault(
        "kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"}
    )
    nb.metadata.setdefault("language_info", {"name": "python"})
    dropped = _fix_widgets(nb)
    if dropped:
        print(f"  {entry}: {dropped} widget view(s) without stored state shown as static output")
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst)


def stage(book: Path = BOOK, repo: Path = REPO, out: Path | None = None) -> Path:
    """Copy the book sources and the notebooks named in the TOC into ``out``; return it."""
    out = out or book / "_build" / "src"
    if (book / "_static").exists():
        raise BookError(
            "book/_static must not exist: Jupyter Book injects every .js in every static "
            "folder into every page once it does; put assets in book/_vendor"
        )
    entries = toc_entries(book)
    missing = [e for e in entries if _find_source(e, book, repo) is None]
    if missing:
        raise BookError(
            "pages listed in book/_toc.yml do not exist (looked in book/ and the repository "
            "root, as .md or .ipynb): " + ", ".join(missing)
        )
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(
        book, out, ignore=shutil.ignore_patterns("_build", "_vendor_src", ".ipynb_checkpoints")
    )
    for entry in entries:
        src = _find_source(entry, book, repo)
        if src.is_relative_to(book):
            continue
        _stage_notebook(src, out / src.relative_to(repo), entry)
    widgets_config = out / "_vendor" / "jupyter-widgets" / "require-config.js"
    widgets_config.parent.mkdir(parents=True, exist_ok=True)
    widgets_config.write_text(WIDGETS_REQUIRE_CONFIG)
    intro = out / f"{entries[0]}.md"
    text = intro.read_text()
    if CHAPTER_MAP_MARKER in text:
        intro.write_text(text.replace(CHAPTER_MAP_MARKER, _chapter_map(entries)))
    return out


def build(book: Path = BOOK, repo: Path = REPO, quiet: bool = False) -> Path:
    """Stage and build the site; return the folder holding ``index.html``."""
    src = stage(book, repo)
    cmd = [
        str(Path(sys.executable).with_name("jupyter-book")),
        "build",
        str(src),
        "--path-output",
        str(book),
        "--builder",
        "html",
        "-W",
        "-n",
        "--keep-going",
        "--all",
    ]
    if quiet:
        cmd.append("-q")
    proc = subprocess.run(cmd, cwd=repo, capture_output=quiet, text=True)
    if proc.returncode != 0:
        detail = (proc.stdout or "")[-4000:] + (proc.stderr or "")[-4000:] if quiet else ""
        raise BookError(f"jupyter-book build failed (exit {proc.returncode})\n{detail}")
    html = book / "_build" / "html"
    if not (html / "index.html").is_file():
        raise BookError(f"the build finished but {html / 'index.html'} is missing")
    return html


def vendor(book: Path = BOOK) -> dict:
    """Refresh ``book/_vendor`` from npm (pinned versions) and write its MANIFEST.json."""
    work = book / "_vendor_src"
    work.mkdir(exist_ok=True)
    (work / "package.json").write_text('{"name": "ganlab-book-vendor", "private": true}\n')
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", *NPM_PACKAGES],
        cwd=work,
        check=True,
    )
    nm = work / "node_modules"
    dest = book / "_vendor"
    if dest.exists():
        shutil.rmtree(dest)
    pairs = [(dest / k, nm / v) for k, v in VENDOR_FILES.items()]
    for folder, pattern in VENDOR_GLOBS.items():
        pairs += [(dest / folder / p.name, p) for p in sorted(nm.glob(pattern))]
    files = {}
    for target, source in pairs:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        data = target.read_bytes()
        files[target.relative_to(dest).as_posix()] = {
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    (dest / ".gitattributes").write_text(
        "# Trimmed copies of npm packages (see MANIFEST.json): not ours to review line by line.\n"
        "* -diff linguist-vendored\n"
    )
    manifest = {
        "npm": NPM_PACKAGES,
        "command": "python -m ganlab.book vendor",
        "files": files,
        "total_bytes": sum(f["bytes"] for f in files.values()),
    }
    (dest / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ganlab.book", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "command", nargs="?", default="build", choices=["build", "vendor"], help="default: build"
    )
    parser.add_argument("--repo", type=Path, default=None, help="the clone (default: found)")
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="where TOC entries not under book/ are looked up (default: the repository)",
    )
    parser.add_argument("--quiet", action="store_true", help="less Sphinx output")
    args = parser.parse_args(argv)
    repo = (args.repo or REPO).resolve()
    book = repo / "book"
    if args.command == "vendor":
        manifest = vendor(book)
        print(f"book/_vendor: {len(manifest['files'])} files, {manifest['total_bytes']:,} bytes")
        return 0
    t0 = time.perf_counter()
    try:
        html = build(book, (args.root or repo).resolve(), quiet=args.quiet)
    except BookError as err:
        print(f"ganlab.book: {err}", file=sys.stderr)
        return 1
    pages = len(toc_entries(book))
    rel = html.relative_to(repo)
    print(
        f"built {pages} pages in {time.perf_counter() - t0:.1f} s: open {rel}/index.html, "
        f"or serve it: python -m http.server -d {rel} -b 127.0.0.1 8000"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
