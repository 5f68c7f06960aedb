"""The website: `python -m ganlab.book build` builds it offline and a headless Chromium reads it.

The build runs once per session with warnings as errors; a chapter listed in book/_toc.yml
whose notebook is missing makes it (and every test that needs the site) fail, never skip.
The browser test needs Debian's /usr/bin/chromium (never a downloaded browser): without it the
test is skipped locally and fails in CI (CI=true).
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import threading
import time
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import nbformat
import pytest

from ganlab import book as bb

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# JavaScript errors we accept, by name, with the reason. Keep this short.
# (sphinx-thebe, whose THEBE_JS_URL constant is declared twice, is not loaded at all: see
# book/_config.yml.) Example entry: "name": re.compile(r"pattern in the message").
JS_ERROR_ALLOW: dict[str, re.Pattern] = {}
PAPER_KEYS = [
    "goodfellow2014gan",
    "mirza2014cgan",
    "reed2016ganintcls",
    "zhang2017stackgan",
    "xu2018attngan",
    "karras2018pggan",
    "karras2019stylegan",
    "park2019spade",
    "choi2020starganv2",
    "heusel2017fid",
    "salimans2016improved",
]


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def site() -> Path:
    """Build the site once (warnings are errors); a missing TOC notebook fails loudly."""
    t0 = time.perf_counter()
    # GANLAB_BOOK_ROOT: where TOC notebooks are looked up, for working on the book with
    # stand-in notebooks; unset (as in CI) it is the repository itself.
    root = Path(os.environ.get("GANLAB_BOOK_ROOT", REPO)).resolve()
    if root != REPO and _in_ci():
        pytest.fail("GANLAB_BOOK_ROOT is for local work on the book; CI builds the real one")
    html = bb.build(BOOK, root, quiet=True)
    print(f"book built in {time.perf_counter() - t0:.1f} s")
    return html


# ---------------------------------------------------------------- the builder, without Sphinx


def _mini_book(tmp_path: Path, toc_chapters: list[str]) -> tuple[Path, Path]:
    book = tmp_path / "book"
    repo = tmp_path
    book.mkdir()
    (book / "intro.md").write_text("# Intro\n\n<!-- chapter-map -->\n")
    chapters = "\n".join(f"      - file: {c}" for c in toc_chapters)
    (book / "_toc.yml").write_text(
        f"format: jb-book\nroot: intro\nparts:\n  - caption: C\n    chapters:\n{chapters}\n"
    )
    return book, repo


def _write_nb(path: Path, cells, metadata=None) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nb.metadata.update(metadata or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def test_toc_notebook_missing_is_an_error(tmp_path):
    book, repo = _mini_book(tmp_path, ["notebooks/09_nothing"])
    with pytest.raises(bb.BookError, match="notebooks/09_nothing"):
        bb.stage(book, repo, tmp_path / "out")


def test_every_toc_page_exists():
    root = Path(os.environ.get("GANLAB_BOOK_ROOT", REPO)).resolve()
    missing = [e for e in bb.toc_entries(BOOK) if bb._find_source(e, BOOK, root) is None]
    assert not missing, f"book/_toc.yml lists pages that do not exist: {missing}"


def test_stage_chapter_map_exercises_and_widget_fallback(tmp_path):
    book, repo = _mini_book(tmp_path, ["notebooks/01_cgan", "exercises/01_cgan"])
    view = {"model_id": "not-stored", "version_major": 2, "version_minor": 0}
    out_cell = nbformat.v4.new_code_cell("w")
    out_cell.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={"application/vnd.jupyter.widget-view+json": view, "text/plain": "IntSlider"},
        )
    ]
    _write_nb(repo / "notebooks/01_cgan.ipynb", [nbformat.v4.new_markdown_cell("# L"), out_cell])
    ex_cell = nbformat.v4.new_code_cell("raise NotImplementedError")
    ex_cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="answer 42")]
    _write_nb(repo / "exercises/01_cgan.ipynb", [nbformat.v4.new_markdown_cell("# E"), ex_cell])

    out = bb.stage(book, repo, tmp_path / "out")
    intro = (out / "intro.md").read_text()
    assert "[CGAN](notebooks/01_cgan.ipynb)" in intro
    assert "[exercises](exercises/01_cgan.ipynb)" in intro
    assert intro.count("| coming |") == 7
    lecture = nbformat.read(out / "notebooks/01_cgan.ipynb", as_version=4)
    data = lecture.cells[1].outputs[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" not in data  # no state: static fallback
    assert data["text/plain"] == "IntSlider"
    exercise = nbformat.read(out / "exercises/01_cgan.ipynb", as_version=4)
    assert exercise.cells[1].outputs == []  # outputs of exercises could show answers

    ex_cell.source = "### BEGIN SOLUTION\nx = 1\n### END SOLUTION"
    _write_nb(repo / "exercises/01_cgan.ipynb", [ex_cell])
    with pytest.raises(bb.BookError, match="BEGIN SOLUTION"):
        bb.stage(book, repo, tmp_path / "out2")


def test_vendored_assets_match_manifest_and_stay_small():
    manifest = json.loads((BOOK / "_vendor" / "MANIFEST.json").read_text())
    total = 0
    for name, meta in manifest["files"].items():
        data = (BOOK / "_vendor" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == meta["sha256"], name
        total += len(data)
    assert total == manifest["total_bytes"]
    assert total < 8_000_000, f"vendored assets grew to {total:,} bytes"
    on_disk = {p.relative_to(BOOK / "_vendor").as_posix() for p in (BOOK / "_vendor").rglob("*")}
    extra = {p for p in on_disk if "." in p} - set(manifest["files"])
    assert extra <= {"MANIFEST.json", ".gitattributes"}, extra


def test_references_cite_every_paper():
    bib = (BOOK / "references.bib").read_text()
    page = (BOOK / "references.md").read_text()
    for key in PAPER_KEYS:
        assert f"{{{key}," in bib, key
        assert f"`{key}`" in page, key


def test_site_builds_with_warnings_as_errors(site):
    for entry in bb.toc_entries(BOOK):
        assert (site / f"{entry}.html").is_file(), entry
    assert (site / "_static/mathjax/tex-svg-full.js").is_file()
    # no page of the site (visited by the browser test or not) pulls a script, a stylesheet,
    # a font or an image from elsewhere
    remote = re.compile(r"<(?:script|img|link|iframe)\b[^>]*\b(?:src|href)=[\"'](?:https?:)?//")
    offenders = {
        str(p.relative_to(site)): remote.findall(p.read_text(errors="replace"))[:3]
        for p in site.rglob("*.html")
        if remote.search(p.read_text(errors="replace"))
    }
    assert not offenders, offenders


# ---------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _chromium_or_skip():
    if CHROMIUM.exists():
        return
    msg = f"{CHROMIUM} is missing: apt-get install -y chromium (Debian's package)"
    if _in_ci():
        pytest.fail(msg)
    pytest.skip(msg)


_PAGE_STATE_JS = """async () => {
  const imgs = [...document.images];
  imgs.forEach(i => { i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.decode().catch(() => null)));
  const maths = [...document.querySelectorAll('.math')];
  return {
    brokenImages: imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src),
    nImages: imgs.length,
    maths: maths.length,
    mathsUntypeset: maths.filter(m => !m.querySelector('mjx-container'))
                         .map(m => m.textContent.slice(0, 60)),
    mathErrors: document.querySelectorAll('mjx-merror, [data-mjx-error]').length,
    widgetViews: document.querySelectorAll(
        'script[type="application/vnd.jupyter.widget-view+json"]').length,
    widgetsRendered: document.querySelectorAll('.jupyter-widgets.widget-container, '
        + '.jupyter-widgets.widget-inline-hbox, .jupyter-widgets.widget-button, '
        + '.jupyter-widgets.widget-box').length,
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    // prose that still shows a $ after typesetting: maths MyST did not parse as maths
    strayDollars: [...document.querySelectorAll('article p, article li, article td')]
      .filter(el => !el.closest('pre, .cell_output'))
      .map(el => {
        const c = el.cloneNode(true);
        c.querySelectorAll('code, pre, mjx-container, .math, script').forEach(n => n.remove());
        return c.textContent;
      })
      .filter(t => t.includes('$')).map(t => t.trim().slice(0, 80)),
  };
}"""


def _wait_until_quiet(page, inflight: dict, quiet_s: float = 0.5, limit_s: float = 90.0):
    """Wait until no request of the page has been in flight for quiet_s; the URLs still
    pending after limit_s (an empty list when the page went quiet)."""
    deadline = time.perf_counter() + limit_s
    quiet_since = None
    while time.perf_counter() < deadline:
        if inflight:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.perf_counter()
        elif time.perf_counter() - quiet_since >= quiet_s:
            return []
        page.wait_for_timeout(100)  # lets playwright deliver the request events
    return sorted(set(inflight.values()))


class _FakePage:
    """Stands in for a playwright page: each wait runs the next scheduled change."""

    def __init__(self, changes):
        self.changes = list(changes)

    def wait_for_timeout(self, ms):
        time.sleep(ms / 1000)
        if self.changes:
            self.changes.pop(0)()


def test_wait_until_quiet_names_the_requests_that_never_finish():
    inflight = {"a": "http://x/a.js", "b": "http://x/b.png"}
    page = _FakePage([lambda: inflight.pop("a")])
    assert _wait_until_quiet(page, inflight, quiet_s=0.2, limit_s=0.6) == ["http://x/b.png"]
    inflight = {"a": "http://x/a.js"}
    page = _FakePage([lambda: None, lambda: inflight.pop("a")])
    assert _wait_until_quiet(page, inflight, quiet_s=0.2, limit_s=5.0) == []


@pytest.mark.browser
def test_site_in_headless_chromium(server, site):
    """Every TOC page loads and is complete, offline, without JavaScript errors."""
    _chromium_or_skip()
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    t0 = time.perf_counter()
    origin = urlparse(server)
    shots = BOOK / "_build" / "screenshots"
    if shots.exists():
        shutil.rmtree(shots)
    problems: dict[str, list[str]] = {}
    external: list[str] = []
    links: set[str] = set()
    entries = bb.toc_entries(BOOK)
    pages = [urljoin(server, f"{e}.html") for e in entries]
    n_maths = n_widgets = n_images = 0

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})

        def gate(route):
            url = urlparse(route.request.url)
            if url.scheme in ("http", "https", "ws", "wss") and url.netloc != origin.netloc:
                external.append(route.request.url)
                current.append(f"request left localhost: {route.request.url}")
                route.abort()
            else:
                route.continue_()

        current: list[str] = []
        context.route("**/*", gate)
        page = context.new_page()
        # the page's own requests still in flight (playwright's "networkidle" is not used: it
        # twice hung a CI run on a clean site, 30 s and then 90 s, naming no request)
        inflight: dict = {}
        page.on("request", lambda r: inflight.__setitem__(r, r.url))
        page.on("requestfinished", lambda r: inflight.pop(r, None))
        page.on("requestfailed", lambda r: inflight.pop(r, None))
        page.on(
            "console",
            lambda m: m.type == "error" and current.append(f"console error: {m.text}"),
        )
        page.on("pageerror", lambda e: current.append(f"page error: {e}"))
        page.on(
            "response",
            lambda r: r.status >= 400 and current.append(f"HTTP {r.status}: {r.url}"),
        )
        page.on(
            "requestfailed",
            lambda r: (
                urlparse(r.url).netloc == origin.netloc
                and current.append(f"request failed: {r.url} ({r.failure})")
            ),
        )
        # the site's address lands on the root page of the TOC
        page.goto(server)
        page.wait_for_url(re.compile(rf"{re.escape(entries[0])}\.html$"), timeout=10_000)
        if current:
            problems[server] = list(current)
        for url in pages:
            current.clear()
            response = page.goto(url, wait_until="load")
            if response is None or response.status >= 400:
                current.append(f"page status {response and response.status}")
            page.evaluate(
                "() => window.MathJax && MathJax.startup ? MathJax.startup.promise : null"
            )
            if page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count():
                try:
                    page.wait_for_selector(".jupyter-widgets", timeout=10_000)
                except PlaywrightTimeout:
                    current.append("no ipywidgets view rendered")
            current += [f"request never finished: {u}" for u in _wait_until_quiet(page, inflight)]
            state = page.evaluate(_PAGE_STATE_JS)
            n_maths += state["maths"]
            n_images += state["nImages"]
            n_widgets += state["widgetsRendered"]
            current += [f"image not loaded: {s}" for s in state["brokenImages"]]
            current += [f"maths not typeset: {m!r}" for m in state["mathsUntypeset"]]
            current += [f"unparsed maths ($ in prose): {t!r}" for t in state["strayDollars"]]
            if state["mathErrors"]:
                current.append(f"{state['mathErrors']} MathJax error(s)")
            if state["widgetViews"] and not state["widgetsRendered"]:
                current.append(f"{state['widgetViews']} widget view(s), none rendered")
            links.update(h for h in state["links"] if urlparse(h).netloc == origin.netloc)
            errors = [p for p in current if not any(rx.search(p) for rx in JS_ERROR_ALLOW.values())]
            if errors:
                shots.mkdir(parents=True, exist_ok=True)
                name = urlparse(url).path.strip("/").replace("/", "__") or "root"
                shot = shots / f"{name}.png"
                page.screenshot(path=str(shot), full_page=True)
                problems[url] = errors + [f"screenshot: {shot}"]

        # every internal link resolves, and so does its #fragment
        bodies: dict[str, str] = {}
        for link in sorted(links):
            target, fragment = urldefrag(link)
            if target not in bodies:
                r = context.request.get(target)
                bodies[target] = r.text() if r.status < 400 else None
                if r.status >= 400:
                    problems.setdefault(link, []).append(f"internal link: HTTP {r.status}")
                    continue
            body = bodies[target]
            if fragment and body is not None and target.endswith(".html"):
                if not re.search(rf'id="{re.escape(fragment)}"', body):
                    problems.setdefault(link, []).append("internal link: no such #fragment")
        browser.close()

    elapsed = time.perf_counter() - t0
    print(
        f"browser: {len(pages)} pages, {len(links)} internal links, {n_images} images, "
        f"{n_maths} maths, {n_widgets} widgets in {elapsed:.1f} s"
    )
    assert not problems and not external, json.dumps(
        {"requests that left localhost": sorted(set(external)), **problems}, indent=2
    )
    assert n_maths > 0, "no maths typeset anywhere: is MathJax wired up?"
