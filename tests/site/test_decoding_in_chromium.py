"""The explorers that decode in the browser, in Chromium, on a page of their own (no book build).

A page holds a 2-D map with interpolation (an autoencoder) and a traversal (a VAE of ten
coordinates, 32 × 32 images, the size of chapter 7's). The page's decode must match PyTorch's
within BOUND on 20 random codes, and every control must change the drawn pixels. The page loads
nothing, throws no error, and says what it needs where scripts are off. The same checks on the
built site, with the book's own models, are in test_site.py.
"""
import explorer_checks as check
import pytest
import torch

from companion.models import VAE, Autoencoder
from companion.viz.browser import BOUND, browser_explorer


def models():
    torch.manual_seed(0)
    ae = Autoencoder(code_size=2, hidden=(256, 64), likelihood="bernoulli").eval()
    vae = VAE(latent_size=10, hidden=(256, 128), image_shape=(1, 32, 32)).eval()
    with torch.no_grad():                              # sharper images than at initialisation
        for model in (ae, vae):
            for p in model.decoder.parameters():
                p.mul_(2.5)
    return ae, vae


@pytest.fixture(scope="module")
def explorers():
    ae, vae = models()
    g = torch.Generator().manual_seed(1)
    codes = torch.randn(400, 2, generator=g)
    pieces = [browser_explorer(ae, codes=codes, labels=torch.arange(400) % 10, ends=([-1.0, -1.0], [1.0, 1.5])),
              browser_explorer(vae, "traversal", starts=torch.randn(3, 10, generator=g), dims=[0, 3, 7],
                               names=["z0 · first", "z3", "z7"], images=torch.rand(3, 1, 32, 32, generator=g))]
    html = "<!doctype html><html><body>" + "".join(p.html for p in pieces) + "</body></html>"
    return (ae, vae), pieces, html


@pytest.fixture
def tab(browser, explorers):
    _, _, html = explorers
    p = browser.new_page(viewport={"width": 1100, "height": 900})
    errors, requests = [], []
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.on("request", lambda r: requests.append(r.url))
    p.set_content(html, wait_until="load")
    check.wait_for(p, 2)
    yield p
    assert errors == [], errors
    assert requests == [], f"the explorer fetched {requests}"
    p.close()


def test_the_browser_decodes_like_pytorch(tab, explorers):
    (ae, vae), _, _ = explorers
    for i, model in enumerate((ae, vae)):
        z = torch.randn(20, 2 if i == 0 else 10, generator=torch.Generator().manual_seed(2 + i)) * 2
        with torch.no_grad():
            want = model.decode_mean(z).flatten(1).double()
        error = (check.decode(tab, i, z) - want).abs().max().item()
        print(f"explorer {i}: largest pixel difference from PyTorch on 20 random codes {error:.1e}")
        assert error <= BOUND


def test_moving_the_pointer_over_the_map_redraws_the_digit(tab):
    check.pointer_redraws_the_map(tab, 0)
    moved = check.code(tab, 0)
    tab.locator(".companion-browser-explorer").first.locator("canvas").first.focus()
    tab.keyboard.press("ArrowLeft")                      # the keyboard moves the code too
    assert check.code(tab, 0)[0] < moved[0]
    box = tab.locator(".companion-browser-explorer").first.locator("canvas").first.bounding_box()
    tab.mouse.move(box["x"] + 10, box["y"] + 10)
    tab.mouse.down()
    tab.mouse.move(box["x"] - 500, box["y"] + box["height"] + 500, steps=3)     # dragged far off the map
    tab.mouse.up()
    (x0, _), (y0, _) = explorers_ranges(tab)
    assert check.code(tab, 0) == pytest.approx([x0, y0])                        # z stops at the map's corner


def explorers_ranges(tab):
    import json

    data = json.loads(tab.locator(".companion-browser-explorer").first.locator("script.cbe-data").text_content())
    return data["xRange"], data["yRange"]


def test_the_interpolation_slider_and_its_ends_move_the_code(tab):
    first = tab.locator(".companion-browser-explorer").first
    slider = first.locator("input[type=range]")
    assert check.code(tab, 0) == pytest.approx([0.0, 0.25], abs=1e-6)     # t = 0.5, halfway from A to B
    slider.fill("0")                                     # t = 0: z is end A
    assert check.code(tab, 0) == pytest.approx([-1.0, -1.0], abs=1e-6)
    slider.fill("1")
    assert check.code(tab, 0) == pytest.approx([1.0, 1.5], abs=1e-6)
    assert check.sliders_redraw(tab, 0) == 1
    first.locator("input[value=B]").check()              # the pointer now moves end B, and z follows at t = 1
    box = first.locator("canvas").first.bounding_box()
    tab.mouse.click(box["x"] + 0.1 * box["width"], box["y"] + 0.9 * box["height"])
    assert check.code(tab, 0)[0] < 0


def test_every_traversal_slider_and_start_changes_the_sprite(tab):
    second = tab.locator(".companion-browser-explorer").nth(1)
    assert second.inner_text().count("z0 · first") == 1
    assert check.sliders_redraw(tab, 1) == 3
    assert [check.code(tab, 1)[j] for j in (0, 3, 7)] == pytest.approx([3.0] * 3)     # each slider at its maximum
    before = check.shown(tab, 1)
    second.locator("button").nth(2).click()             # the third start: sliders take its values
    assert check.shown(tab, 1) != before
    assert float(second.locator("input[type=range]").first.input_value()) != 3.0


def test_without_scripts_the_reader_is_told_what_is_needed(browser, explorers):
    _, _, html = explorers
    context = browser.new_context(java_script_enabled=False)
    p = context.new_page()
    p.set_content(html)
    assert "runs the decoder in your browser with a script" in p.locator(".cbe-fallback").first.inner_text()
    context.close()


def test_an_output_whose_script_runs_elsewhere_still_starts(browser, explorers):
    """VS Code and the classic notebook run an output's script outside the output (then
    document.currentScript is not inside it): the script starts every output not yet started."""
    _, pieces, _ = explorers
    p = browser.new_page()
    errors = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.set_content("<!doctype html><html><body><div id=out></div></body></html>")
    p.evaluate("""(html) => {
        const out = document.getElementById("out");
        out.innerHTML = html;                                   // scripts inserted this way do not run
        for (const old of Array.from(out.querySelectorAll("script:not([type])"))) {
            const copy = document.createElement("script");      // run a copy in the head, as those hosts do
            copy.textContent = old.textContent;
            old.remove();
            document.head.appendChild(copy);
        }
    }""", pieces[0].html + pieces[1].html)
    check.wait_for(p, 2)
    assert p.locator(".cbe-fallback").count() == 0
    assert check.code(p, 1) and len(check.shown(p, 0)) == 28 * 28 * 4
    assert errors == [], errors
    p.close()
