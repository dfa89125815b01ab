"""What the browser tests ask of an explorer that decodes in the page (companion.viz.browser):
its decode, what it draws, and whether each control changes the drawing. Used on a page of
its own (test_decoding_in_chromium.py) and on the built site (test_site.py)."""
import torch

ROOTS = "Array.from(document.querySelectorAll('.companion-browser-explorer'))"


def _at(i: int) -> str:
    """Explorer i in JavaScript: what the i-th output on the page holds once it has started."""
    return f"document.querySelectorAll('.companion-browser-explorer')[{i}].companionExplorer"


def count(p) -> int:
    """How many outputs on the page have started (their decoder unpacked, their controls built)."""
    return p.evaluate(f"() => {ROOTS}.filter(root => root.companionExplorer).length")


def wait_for(p, n: int, timeout: float = 30_000) -> None:
    p.wait_for_function(f"() => {ROOTS}.filter(root => root.companionExplorer).length == {n}", timeout=timeout)


def decode(p, i: int, z: torch.Tensor) -> torch.Tensor:
    """The page's decode of codes z (N, m), as pixels (N, C·H·W), float64."""
    out = p.evaluate(f"(zs) => zs.map(z => {_at(i)}.decode(z))", z.tolist())
    return torch.tensor(out, dtype=torch.float64)


def shown(p, i: int) -> list[int]:
    """The RGBA bytes of the image explorer i shows now."""
    return p.evaluate(f"""() => {{ const c = {_at(i)}.image;
                                  return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }}""")


def code(p, i: int) -> list[float]:
    return p.evaluate(f"() => {_at(i)}.code()")


def ms_per_decode(p, i: int, n: int = 300) -> float:
    return p.evaluate(f"""() => {{ const e = {_at(i)}, z = new Array(e.codeSize).fill(0.3);
                                  const t0 = performance.now();
                                  for (let k = 0; k < {n}; k++) {{ z[0] = k / 100; e.decode(z); }}
                                  return (performance.now() - t0) / {n}; }}""")


def pointer_redraws_the_map(p, i: int) -> None:
    """Hovering with a mouse, then dragging, over explorer i's map changes the code and the image."""
    root = p.locator(".companion-browser-explorer").nth(i)
    root.scroll_into_view_if_needed()
    box = root.locator("canvas").first.bounding_box()
    at = lambda fx, fy: (box["x"] + fx * box["width"], box["y"] + fy * box["height"])     # noqa: E731
    p.mouse.move(*at(0.25, 0.3))
    first, first_code = shown(p, i), code(p, i)
    p.mouse.move(*at(0.7, 0.65), steps=4)
    assert shown(p, i) != first, f"hovering over map {i} did not redraw the image"
    p.mouse.down()
    p.mouse.move(*at(0.4, 0.8), steps=4)
    p.mouse.up()
    assert code(p, i) != first_code and shown(p, i) != first


def sliders_redraw(p, i: int, skip: str | None = None) -> int:
    """Setting each slider of explorer i to its two ends changes the image, except sliders whose
    label holds ``skip``; returns how many sliders were checked."""
    root = p.locator(".companion-browser-explorer").nth(i)
    root.scroll_into_view_if_needed()
    rows = root.locator("label:has(input[type=range])")
    checked = 0
    for s in range(rows.count()):
        if skip and skip in rows.nth(s).inner_text():
            continue
        slider = rows.nth(s).locator("input[type=range]")
        slider.fill(slider.get_attribute("min"))
        low = shown(p, i)
        slider.fill(slider.get_attribute("max"))
        assert shown(p, i) != low, f"slider {s} of explorer {i} did not change the image"
        checked += 1
    return checked
