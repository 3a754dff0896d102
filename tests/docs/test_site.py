"""The docs site in a real browser: build it, serve it on 127.0.0.1, open every page in headless Chromium.

Each page must show its title, load every image, log no console error, request nothing that fails, and link
only to pages and anchors that exist in the built site. Screenshots of the home page and of one system page go
to ``runs/docs-check/`` (printed). The browser is Debian's ``/usr/bin/chromium`` (``make sysdeps`` installs it),
driven by Playwright from PyPI; Playwright never downloads a browser here.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO / "runs" / "docs-check"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SYSTEM_PAGE = "isadre"  # the system page whose screenshot is saved beside the home page's


def doc_pages() -> list[Path]:
    """Every Markdown page of the site (``docs/**/*.md``; ``docs/hooks/`` is build code, not a page)."""
    return sorted(p for p in DOCS.rglob("*.md") if "hooks" not in p.relative_to(DOCS).parts)


def page_url_path(md: Path) -> str:
    """The URL path MkDocs gives a page (``use_directory_urls``): ``fat.md`` -> ``/fat/``, ``index.md`` -> ``/``."""
    rel = md.relative_to(DOCS).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "index":
        parts = parts[:-1]
    return "/" + "".join(f"{p}/" for p in parts)


def markdown_title(md: Path) -> str:
    """The page's first level-1 heading, as the reader should see it."""
    for line in md.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            text = re.sub(r"`([^`]*)`", r"\1", line[2:].strip())  # code spans render as their text
            return re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links render as their text
    raise AssertionError(f"{md}: no level-1 '# ' heading; every page needs a title")


def site_file(site: Path, url_path: str) -> Path:
    """The file in ``site`` that serves ``url_path`` (a directory URL serves its ``index.html``)."""
    rel = unquote(url_path).lstrip("/")
    target = site / rel
    return target / "index.html" if rel == "" or rel.endswith("/") or target.is_dir() else target


class _QuietHandler(SimpleHTTPRequestHandler):
    """Static files from the built site; remembers every request that was answered with an error."""

    failures: list[str]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        return

    def log_error(self, format: str, *args: object) -> None:  # noqa: A002
        self.failures.append(f"{self.path}: " + (format % args))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh strict build of ``docs/`` (so the check never looks at a stale ``site/``)."""
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin", "HOME": str(out)},
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[tuple[str, list[str]]]:
    """``site`` served on 127.0.0.1 at a free port, in a thread that is shut down afterwards."""
    failures: list[str] = []
    handler = type("Handler", (_QuietHandler,), {"failures": failures})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", failures
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def _ids_in(path: Path, cache: dict[Path, set[str]]) -> set[str]:
    if path not in cache:
        text = path.read_text(encoding="utf-8", errors="replace")
        cache[path] = {html.unescape(m) for m in re.findall(r"""\bid=["']([^"']+)["']""", text)}
    return cache[path]


@pytest.mark.integration
def test_every_page_renders_in_chromium(site: Path, server: tuple[str, list[str]]) -> None:
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is absent: Debian's chromium is the browser (install it with `make sysdeps`)"
        )
    from playwright.sync_api import sync_playwright

    base, server_failures = server
    pages = doc_pages()
    assert any(p.name == "index.md" for p in pages), "docs/index.md (the home page) is missing"
    problems: list[str] = []
    ids_cache: dict[Path, set[str]] = {}
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            for md in pages:
                url_path = page_url_path(md)
                name = md.relative_to(DOCS).as_posix()
                assert site_file(site, url_path).is_file(), f"{name}: not built at {url_path}"
                page = context.new_page()
                errors: list[str] = []
                page.on(
                    "console",
                    lambda msg, errors=errors: (
                        errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None
                    ),
                )
                page.on("pageerror", lambda exc, errors=errors: errors.append(f"page error: {exc}"))
                page.on(
                    "requestfailed", lambda req, errors=errors: errors.append(f"request failed: {req.url}")
                )
                page.on(
                    "response",
                    lambda resp, errors=errors: (
                        errors.append(f"HTTP {resp.status}: {resp.url}") if resp.status >= 400 else None
                    ),
                )
                response = page.goto(base + url_path, wait_until="load")
                assert response is not None and response.status == 200, f"{name}: {url_path} not served"
                page.wait_for_load_state("networkidle")

                # Title: the page's heading is visible and names the browser tab.
                title = markdown_title(md)
                h1 = page.locator("article h1").first
                if not h1.is_visible():
                    problems.append(f"{name}: no visible <h1>")
                elif h1.inner_text().strip().rstrip("¶").strip() != title:
                    problems.append(f"{name}: <h1> reads {h1.inner_text()!r}, expected {title!r}")
                if not page.title().startswith(title):
                    problems.append(f"{name}: tab title {page.title()!r} does not start with {title!r}")

                # Images: every one has loaded, and each image of the Markdown source is on the page.
                images = page.evaluate(
                    "() => Array.from(document.images).map(i => [i.currentSrc || i.src, i.complete, i.naturalWidth])"
                )
                for src, complete, width in images:
                    if not complete or width == 0:
                        problems.append(f"{name}: image {src} did not load (naturalWidth {width})")
                source = md.read_text(encoding="utf-8")
                wanted = re.findall(r"!\[[^\]]*\]\(([^)\s]+)", source)
                content_images = page.locator("article img").count()
                if content_images < len(wanted):
                    problems.append(
                        f"{name}: {len(wanted)} images in the source, {content_images} on the page"
                    )

                # Results blocks: every generated block of the source is in the page.
                blocks = re.findall(r"^<!-- mercato:begin (\S+) -->", source, flags=re.MULTILINE)
                built = site_file(site, url_path).read_text(encoding="utf-8")
                for block in blocks:
                    if f"<!-- mercato:begin {block} -->" not in built:
                        problems.append(f"{name}: results block {block!r} missing from the page")

                # Internal links: the target file exists in the site, and so does the anchor.
                hrefs = page.evaluate(
                    "() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"
                )
                for href in hrefs:
                    parts = urlsplit(urljoin(base + url_path, href))
                    if f"{parts.scheme}://{parts.netloc}" != base:
                        continue  # an external link (arXiv, ...): never followed by the check
                    target = site_file(site, parts.path)
                    if not target.is_file():
                        problems.append(
                            f"{name}: broken link {href} (no {target.relative_to(site)} in the site)"
                        )
                    elif parts.fragment and target.suffix == ".html":
                        if unquote(parts.fragment) not in _ids_in(target, ids_cache):
                            problems.append(f"{name}: link {href}: no anchor #{parts.fragment} in the target")

                problems.extend(f"{name}: {e}" for e in errors)
                stem = "home" if url_path == "/" else url_path.strip("/").replace("/", "-")
                if stem in ("home", SYSTEM_PAGE):
                    shot = SCREENSHOTS / f"{stem}.png"
                    page.screenshot(path=str(shot), full_page=stem == "home")
                    shots.append(shot)
                page.close()
        finally:
            browser.close()

    print("docs check screenshots: " + ", ".join(str(s) for s in shots))
    problems.extend(f"server: {f}" for f in server_failures)
    assert not problems, "docs site problems:\n" + "\n".join(problems)
    assert len(shots) == 2, f"expected screenshots of the home page and {SYSTEM_PAGE}, got {shots}"
    for shot in shots:
        assert shot.stat().st_size > 10_000, f"{shot}: screenshot looks empty"


def test_page_url_paths() -> None:
    assert page_url_path(DOCS / "index.md") == "/"
    assert page_url_path(DOCS / "fat.md") == "/fat/"
    assert page_url_path(DOCS / "sub" / "index.md") == "/sub/"


def test_markdown_title_strips_markup(tmp_path: Path) -> None:
    md = tmp_path / "p.md"
    md.write_text("intro\n# The `mercato.fat` [FAT](fat.md) page\n", encoding="utf-8")
    assert markdown_title(md) == "The mercato.fat FAT page"


def test_systems_table_links_only_existing_pages() -> None:
    sys.path.insert(0, str(DOCS / "hooks"))
    try:
        import systems  # the MkDocs hook (docs/hooks/systems.py)
    finally:
        sys.path.pop(0)
    table = systems.systems_table({"index.md", "fat.md", "results.md", "extra.md"})
    assert "[fat](fat.md)" in table
    assert "(mal.md)" not in table and "| not written yet |" in table
    assert "Other pages: [extra](extra.md)." in table
