"""The built website as a reader sees it, in a real browser, with no network.

Every page listed in _toc.yml is checked (new chapters are covered without new test code):
typeset math, loaded images, no uncaught JavaScript errors, working solution toggles, a
Colab link to the page's own notebook, for every static latent-space explorer, that moving
each slider changes the displayed image, and, for every explorer that decodes in the browser,
that it decodes like PyTorch's model and redraws under the pointer and the sliders. Every HTML page of the site, the generated ones
(search, index, proofs) included, loads with no uncaught script error and no request to the
site that fails; console errors are printed.
"""
import json
import re
from pathlib import Path

import explorer_checks as check
import pytest
import torch

from companion.experiments.core import name_of

ROOT = Path(__file__).resolve().parents[2]

MAX_PAGE_BYTES = 1_500_000
#: what the weights of the explorers that decode in the browser may add to one page
MAX_WEIGHT_BYTES = 1_500_000
#: the model behind each page's in-browser explorer: (experiment, its name in the run)
BROWSER_MODELS = {"chapters/01_autoencoder": ("ch01_autoencoder", lambda run: "explorer"),
                  "chapters/06_vae": ("ch06_vae", lambda run: "z2"),
                  "chapters/07_beta_vae": ("ch07_beta_vae", lambda run: name_of(beta=max(run.budget.betas)))}


def _open(browser, url):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    failed = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.goto(url, wait_until="load", timeout=60_000)
    # MathJax typesets asynchronously: wait until it says it is done
    page.wait_for_function("() => !window.MathJax || !window.MathJax.startup || "
                           "window.MathJax.startup.promise.then(() => true)", timeout=30_000)
    page.evaluate("() => window.MathJax && window.MathJax.startup && window.MathJax.startup.promise")
    page.wait_for_timeout(300)
    return page, errors, failed


@pytest.fixture
def opened(browser, site_url, page, screenshots):
    p, errors, failed = _open(browser, f"{site_url}/{page}.html")
    yield p, errors, failed
    p.screenshot(path=str(screenshots / f"{page.replace('/', '__')}.png"), full_page=True)
    p.close()


def test_page_size(built_site, page):
    site, _ = built_site
    size = (site / f"{page}.html").stat().st_size
    print(f"{page}: {size / 1024:.0f} KB")
    assert size < MAX_PAGE_BYTES, f"{page}.html is {size / 1e6:.2f} MB; keep pages under 1.5 MB"


def test_math_is_typeset(opened, built_site, page):
    p, _, _ = opened
    text = p.evaluate("() => document.body.innerText")            # the page and its navigation
    for raw in (r"\(", r"\)", r"\[", r"\]", "$$", r"\begin{"):
        assert raw not in text, f"raw TeX {raw!r} left in the visible text of {page}"
    article = p.evaluate("() => document.querySelector('article').innerHTML")
    if 'class="math' in article:
        assert p.locator("mjx-container").count() > 0, "the page has math but MathJax typeset nothing"


def test_markdown_tables_are_rendered(opened, page):
    """Tables that cells print as Markdown must arrive as tables, not as lines of pipes."""
    p, _, _ = opened
    text = p.evaluate("() => Array.from(document.querySelectorAll('article .cell_output'))"
                      ".map(e => e.innerText).join('\\n')")
    raw = [line for line in text.splitlines() if re.match(r"^\s*\|.*\|\s*$", line) or "| --- |" in line]
    assert not raw, f"unrendered Markdown table on {page}: {raw[:3]}"


def test_every_image_loaded(opened):
    p, _, failed = opened
    p.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
    p.wait_for_timeout(200)
    broken = p.evaluate("""() => Array.from(document.images)
        .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 120))""")
    assert not broken, f"images that did not load: {broken}"
    local = [u for u in failed if u.startswith("http://127.0.0.1")]
    assert not local, f"requests to the site that failed: {local}"


def _site_pages(site) -> list[str]:
    """Every HTML page a reader can reach: the book's pages and the ones Sphinx generates."""
    skip = {"_static", "_sources", "_images", "mathjax", "widgets"}
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html") if not skip & set(p.relative_to(site).parts))


def test_every_page_loads_without_script_errors_or_failed_requests(browser, built_site, site_url):
    """No uncaught error, and every request to the site answers (a failed request or a status
    of 400 or more counts, a missing favicon included). Console errors are listed, not failed
    on: some come from third-party code we do not control (printed with -s)."""
    site, _ = built_site
    pages = _site_pages(site)
    assert len(pages) >= 14, pages
    problems = {}
    for name in pages:
        p = browser.new_page(viewport={"width": 1280, "height": 900})
        errors, bad, console = [], [], []
        p.on("pageerror", lambda e: errors.append(str(e)))
        p.on("requestfailed", lambda r: r.url.startswith(site_url) and bad.append(f"{r.url}: {r.failure}"))
        p.on("response", lambda r: r.url.startswith(site_url) and r.status >= 400 and bad.append(f"{r.url}: {r.status}"))
        p.on("console", lambda m: m.type == "error" and console.append(m.text))
        p.goto(f"{site_url}/{name}", wait_until="load", timeout=60_000)
        p.wait_for_timeout(500)
        p.close()
        if console:
            print(f"{name}: console errors {console}")
        if errors or bad:
            problems[name] = {"page errors": errors, "failed requests": bad}
    print(f"{len(pages)} pages opened")
    assert not problems, problems


def test_solution_toggles_open(opened):
    p, _, _ = opened
    solutions = p.locator(".solution.dropdown")
    for i in range(solutions.count()):
        sol = solutions.nth(i)
        body = sol.locator(".admonition-title ~ *").first
        sol.scroll_into_view_if_needed()
        assert not body.is_visible(), "a solution is visible before its toggle is clicked"
        sol.locator(".toggle-button").first.click()
        body.wait_for(state="visible", timeout=5000)


def test_colab_link_opens_this_pages_notebook(opened, page):
    p, _, _ = opened
    links = p.eval_on_selector_all("a[href*='colab.research.google.com']", "els => els.map(e => e.href)")
    if not page.startswith("chapters/") and not links:
        pytest.skip("not a notebook page")
    assert links, "no Colab launch button"
    assert all(re.search(rf"/blob/main/{re.escape(page)}\.ipynb$", l) for l in links), links
    binder = p.eval_on_selector_all("a[href*='mybinder.org']", "els => els.map(e => e.href)")
    assert binder and all(f"{page}.ipynb" in b for b in binder), binder


def _shown_image(explorer) -> bytes:
    """What the explorer displays now: a screenshot of its visible image."""
    imgs = explorer.locator("img")
    visible = [imgs.nth(i) for i in range(imgs.count()) if imgs.nth(i).is_visible()]
    assert len(visible) == 1, f"expected one visible frame, found {len(visible)}"
    return visible[0].screenshot()


def test_static_explorers_respond_to_every_slider(opened, page, screenshots):
    p, _, _ = opened
    explorers = p.locator(".companion-explorer")
    source = ROOT / f"{page}.md"
    if source.is_file() and any(f in source.read_text() for f in ("static_interact(", "latent_map(")):
        assert explorers.count() >= 1, f"{page} builds an explorer, but the page shows none (is it displayed?)"
    for e in range(explorers.count()):
        explorer = explorers.nth(e)
        explorer.scroll_into_view_if_needed()
        sliders = explorer.locator(".widget-slider")
        assert sliders.count() >= 1
        for s in range(sliders.count()):
            before = _shown_image(explorer)
            readout = sliders.nth(s).locator(".widget-readout")
            value = readout.inner_text()
            handle = sliders.nth(s).locator(".noUi-handle")
            handle.focus()
            p.keyboard.press("Home")                       # jump to the first value
            p.wait_for_timeout(150)
            assert readout.inner_text() != value, f"slider {s} of explorer {e} did not move"
            after = _shown_image(explorer)
            assert after != before, f"moving slider {s} of explorer {e} on {page} did not change the image"
        explorer.screenshot(path=str(screenshots / f"{page.replace('/', '__')}__explorer{e}.png"))


def _book_model(page):
    """The model the page's explorer exports, from the run the build saved ($COMPANION_RUN_CACHE)."""
    import importlib

    module, name = BROWSER_MODELS[page]
    run = importlib.import_module(f"companion.experiments.{module}").run("quick", seed=0)
    return run.models[name(run)].eval()


def test_explorers_that_decode_in_the_browser(opened, page, built_site):
    """Decodes within BOUND of PyTorch's on 20 random codes, the map redraws under the pointer,
    every active slider redraws, and the weights stay within the page budget (sizes printed)."""
    from companion.viz.browser import BOUND

    p, _, _ = opened
    source = ROOT / f"{page}.md"
    roots = p.locator(".companion-browser-explorer").count()
    if not (source.is_file() and "browser_explorer(" in source.read_text()):
        assert roots == 0
        pytest.skip("no explorer that decodes in the browser")
    assert roots >= 1 and page in BROWSER_MODELS, f"{page} builds an in-browser explorer; name its model here"
    check.wait_for(p, roots)
    html = (built_site[0] / f"{page}.html").read_text()
    blobs = [json.loads(b) for b in re.findall(r'<script type="application/json" class="cbe-data">(.*?)</script>', html, re.S)]
    weights = sum(len(layer[k]) for b in blobs for layer in b["layers"] for k in ("q", "scale", "bias"))
    assert len(blobs) == roots and weights <= MAX_WEIGHT_BYTES
    model = _book_model(page)
    for i in range(roots):
        z = torch.randn(20, blobs[i]["codeSize"], generator=torch.Generator().manual_seed(i)) * 2
        with torch.no_grad():
            error = (check.decode(p, i, z) - model.decode_mean(z).flatten(1).double()).abs().max().item()
        ms = check.ms_per_decode(p, i)
        print(f"{page} explorer {i} ({blobs[i]['kind']}): weights add {weights / 1e6:.2f} MB; largest pixel "
              f"difference from PyTorch on 20 random codes {error:.1e}; {ms:.2f} ms per decode")
        assert error <= BOUND
        if blobs[i]["kind"] == "map":
            check.pointer_redraws_the_map(p, i)
        checked = check.sliders_redraw(p, i, skip="inactive")
        assert checked >= (1 if blobs[i]["kind"] == "traversal" or blobs[i]["ends"] else 0)
