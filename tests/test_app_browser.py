"""The app in a real browser (Playwright + the system's Chromium; never `playwright install`):
at 1400x1000 and 420x900 every tab shows the output the sliders edit together with them, no text
overflows, the notation has a clef; uploads and sliders change the picture, music traversals are
drawn and audible, surfaces render, bad uploads are reported; the server logs no traceback.
Screenshots of every tab at both sizes go to test-output/screenshots/."""
import io

import numpy as np
import pytest
from PIL import Image

from arvae import registry
from browser_helpers import SCREENSHOTS, SIZES, TIMEOUT_MS, VIEWPORT, audio_stats, error_toasts, plot_data, \
    wait_idle


@pytest.fixture
def page(browser, app_server):
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(app_server.url)
    page.get_by_role("tab", name="2-d Sprites").wait_for()
    yield page
    context.close()


def open_tab(page, name):
    page.get_by_role("tab", name=name).click()
    page.wait_for_timeout(300)


def image_pixels(page, selector) -> np.ndarray:
    src = page.locator(f"{selector} img").first.get_attribute("src")
    response = page.request.get(src)
    assert response.ok, src
    return np.asarray(Image.open(io.BytesIO(response.body())).convert("L"), dtype=np.int16)


# elements whose text must fit their box: labels, info lines, buttons, table cells, tab names, menus
TEXT_OVERFLOW = """sel => {
    const root = document.querySelector(sel);
    const bad = [];
    const scrolls = el => { for (let e = el; e && e !== root; e = e.parentElement) {
        const o = getComputedStyle(e).overflowX; if (o === 'auto' || o === 'scroll') return true; } return false; };
    const picked = root.querySelectorAll('label, button, th, td, [data-testid="block-info"], [data-testid="block-label"],'
        + ' .prose p, .prose li, span.info, [role="tab"], input[type="text"], input[type="number"], input[role="combobox"]');
    for (const el of picked) {
        if (!el.offsetParent || el.closest('.js-plotly-plot, svg, .hide') || !(el.value || el.innerText).trim()) continue;
        const style = getComputedStyle(el);
        const wide = el.scrollWidth > el.clientWidth + 1, tall = el.scrollHeight > el.clientHeight + 2
            && style.overflowY !== 'visible';
        if (el.tagName === 'INPUT' ? (wide && style.textOverflow !== 'ellipsis') : ((wide && !scrolls(el)) || tall))
            bad.push(`${el.tagName}.${el.className}: "${(el.value || el.innerText).slice(0, 60)}"`);
    }
    return bad;
}"""

# a menu's text must end before its caret (the caret is drawn over the input's right end)
MENU_UNDER_CARET = """sel => {
    const menus = Array.from(document.querySelectorAll(sel + ' input[role="combobox"]')).filter(i => i.offsetParent);
    if (!menus.length) return ['no menu found: the check would prove nothing'];
    return menus.filter(input => {
        const icon = input.closest('.wrap-inner').querySelector('.icon-wrap svg');
        const textRight = input.getBoundingClientRect().right - parseFloat(getComputedStyle(input).paddingRight);
        return icon && textRight > icon.getBoundingClientRect().left + 1;
    }).map(input => input.value);
}"""


def visible_together(page, selectors) -> list[str]:
    """Selectors whose bounding box is not wholly inside the viewport (empty: all are visible at once)."""
    size = page.viewport_size
    out = []
    for selector in selectors:
        box = page.locator(selector).first.bounding_box()
        if box is None or box["y"] < -1 or box["x"] < -1 or box["y"] + box["height"] > size["height"] + 1 \
                or box["x"] + box["width"] > size["width"] + 1:
            out.append(f"{selector} at {box}")
    return out


GROUP_EDGES = """([sels, edge]) => {
    const boxes = sels.map(s => document.querySelector(s).getBoundingClientRect());
    return edge === 'top' ? Math.min(...boxes.map(b => b.top)) + window.scrollY
                          : Math.max(...boxes.map(b => b.bottom)) + window.scrollY;
}"""


def shown_together(page, selectors) -> list[str]:
    """Scroll the top of the group to the top of the viewport, then (sticky outputs) its bottom to
    the bottom; returns what is still outside the viewport at the better of the two (empty: all fit)."""
    height = page.viewport_size["height"]
    for edge, offset in (("top", -8), ("bottom", 8 - height)):
        page.evaluate("y => window.scrollTo(0, y)", page.evaluate(GROUP_EDGES, [selectors, edge]) + offset)
        page.wait_for_timeout(250)
        hidden = visible_together(page, selectors)
        if not hidden:
            return []
    return hidden


def edited_output(spec) -> str:
    return f"#{spec.key}-output" if spec.domain == "image" else f"#{spec.key}-edit-roll"


@pytest.mark.parametrize("size", list(SIZES))
def test_each_tab_shows_the_edited_output_with_its_controls_and_nothing_overflows(browser, app_server, size):
    """At 1400x1000 and 420x900, on every tab once its first example is loaded: the output the sliders
    edit and every slider fit in the viewport together (scrolled to the output, then to the last
    slider), no text overflows its box, the notation has a clef, there is no error toast; screenshots."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=SIZES[size])
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(app_server.url)
    page.get_by_role("tab", name="About & metrics").wait_for()
    try:
        for number, spec in enumerate(registry.DATASETS.values(), start=1):
            tab = page.get_by_role("tab", name=spec.display_name)
            assert tab.is_visible(), f"{size}: the {spec.display_name} tab is hidden"
            tab.click()
            output = edited_output(spec)
            if spec.domain == "image":
                page.locator(f"{output} img").wait_for()
                page.locator(f"#{spec.key}-grid img").wait_for(state="attached")  # lazy: loads when scrolled to
            else:
                plot_data(page, output)
                plot_data(page, f"#{spec.key}-traversal")
                page.locator(f"#{spec.key}-edit-notation svg g.clef").first.wait_for()  # readable pitches
            wait_idle(page, f"#tab-{spec.key}")
            group = [output, *(f"#{spec.key}-slider-{name}" for name in spec.attribute_names)]
            hidden = shown_together(page, group)
            assert not hidden, f"{size} {spec.display_name}: not in the viewport with the rest: {hidden}"
            page.screenshot(path=str(SCREENSHOTS / f"{size}-{number}-{spec.key}.png"))
            for check in (TEXT_OVERFLOW, MENU_UNDER_CARET):
                bad = page.evaluate(check, f"#tab-{spec.key}")
                assert not bad, f"{size} {spec.display_name}: text outside its box: {bad}"
            assert not error_toasts(page), f"{size} {spec.display_name}: {error_toasts(page)}"
        page.get_by_role("tab", name="About & metrics").click()
        page.get_by_text("AR-VAE in a few sentences").wait_for()
        assert "Interpretability" in page.locator("#metrics-table").inner_text()
        help_text = page.locator("#metrics-help").inner_text()
        assert "Mutual information gap" in help_text.replace("mutual", "Mutual") and "@article" in help_text
        assert page.locator("#metrics-help a[href='https://arxiv.org/abs/2004.05485']").count() == 1
        bad = page.evaluate(TEXT_OVERFLOW, "#tab-about")
        assert not bad, f"{size} About: text outside its box: {bad}"
        assert not error_toasts(page)
        page.screenshot(path=str(SCREENSHOTS / f"{size}-{len(registry.DATASETS) + 1}-about.png"))
    finally:
        context.close()
    logs = app_server.logs()
    assert "Traceback" not in logs, logs[logs.index("Traceback") - 1500:][:5000]


def test_uploading_an_image_and_moving_a_slider_changes_the_output(page, tmp_path):
    page.locator("#sprites-grid img").wait_for()
    wait_idle(page, "#tab-sprites")
    before_input = page.locator("#sprites-input img").get_attribute("src")
    drawing = np.full((200, 200), 250, np.uint8)  # a dark ellipse on white paper
    yy, xx = np.mgrid[:200, :200]
    drawing[((yy - 120) / 18.0) ** 2 + ((xx - 70) / 30.0) ** 2 <= 1] = 15
    Image.fromarray(drawing).save(tmp_path / "drawing.png")
    page.locator("#sprites-upload input[type=file]").set_input_files(str(tmp_path / "drawing.png"))
    page.wait_for_function("before => { const i = document.querySelector('#sprites-input img'); "
                           "return i && i.getAttribute('src') !== before; }", arg=before_input)
    wait_idle(page, "#tab-sprites")
    uploaded = image_pixels(page, "#sprites-input")
    assert uploaded.shape == (64, 64) and uploaded[0].max() == 0 and uploaded.max() == 255  # inverted, binary
    output = page.locator("#sprites-output img")
    before_src, before = output.get_attribute("src"), image_pixels(page, "#sprites-output")

    slider = page.locator("#sprites-slider-scale input[type=range]")
    slider.evaluate("el => { el.value = 4; el.dispatchEvent(new Event('input', {bubbles: true})); "
                    "el.dispatchEvent(new Event('change', {bubbles: true})); }")
    page.wait_for_function("before => document.querySelector('#sprites-output img').getAttribute('src') !== before",
                           arg=before_src)
    after = image_pixels(page, "#sprites-output")
    assert np.abs(after - before).max() > 0
    assert page.locator("#sprites-slider-scale input[type=number]").input_value() == "4"
    assert not error_toasts(page)


def test_music_traversal_draws_a_piano_roll_and_plays(page):
    open_tab(page, "Bach Chorales")
    traces = plot_data(page, "#bach-traversal")
    assert [t["type"] for t in traces] == ["bar", "scatter"] * 4
    assert sum(t["n"] for t in traces if t["type"] == "bar") > 0  # notes on the piano rolls
    wait_idle(page, "#tab-bach")
    stats = [audio_stats(page, f"#bach-audio-{name}") for name in registry.get("bach").attribute_names]
    assert all(abs(s["duration"] - 18.5) < 0.05 for s in stats)  # 9 measures at 120 bpm + release
    assert max(s["peak"] for s in stats) > 0.05  # not silent
    held_out = audio_stats(page, "#bach-input-audio")
    assert abs(held_out["duration"] - 2.5) < 0.05 and held_out["peak"] > 0.05
    assert not error_toasts(page)


def test_the_traversal_notation_is_made_when_its_panel_opens_and_follows_new_traversals(page):
    open_tab(page, "Bach Chorales")
    plot_data(page, "#bach-traversal")
    wait_idle(page, "#tab-bach")
    notation = page.locator("#bach-traversal-notation")
    assert notation.locator("svg").count() == 0  # closed panel: nothing engraved yet
    page.locator("#bach-scores-panel").get_by_text("Notation and downloads of the traversals").click()
    notation.locator("svg g.clef").first.wait_for()
    assert notation.locator("h4").count() == 4
    first = notation.inner_html()
    page.locator("#tab-bach").get_by_role("button", name="Sample from prior").click()  # a new measure, traversed
    page.wait_for_function("([sel, before]) => document.querySelector(sel).innerHTML !== before",
                           arg=["#bach-traversal-notation", first], timeout=60_000)
    notation.locator("svg g.clef").first.wait_for()
    assert not error_toasts(page)


def test_attribute_surface_heatmap_renders(page):
    open_tab(page, "Morpho-MNIST")
    page.locator("#mnist-grid img").wait_for()
    wait_idle(page, "#tab-mnist")
    page.locator("#mnist-surface-button").click()
    traces = plot_data(page, "#mnist-surface")
    assert traces[0]["type"] == "heatmap" and traces[0]["rows"] == 16 and traces[0]["cols"] == 16
    page.locator("#mnist-surface .js-plotly-plot").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "mnist-surface.png"))
    assert not error_toasts(page)


def test_a_bad_upload_shows_a_clear_error_and_the_app_keeps_serving(page, tmp_path):
    page.locator("#sprites-grid img").wait_for()
    wait_idle(page, "#tab-sprites")
    fake = tmp_path / "holiday.png"
    fake.write_text("not a picture at all")
    page.locator("#sprites-upload input[type=file]").set_input_files(str(fake))
    toast = page.locator("[data-testid='toast-body'].error").first
    toast.wait_for()
    assert "holiday.png" in toast.inner_text() and "not an image" in toast.inner_text()
    # still serving: load another held-out example
    before = page.locator("#sprites-input img").get_attribute("src")
    page.locator("#sprites-index input").fill("5")
    page.locator("#sprites-load").click()
    page.wait_for_function("before => document.querySelector('#sprites-input img').getAttribute('src') !== before",
                           arg=before)


def test_a_bad_music_file_leaves_the_measures_as_they_were_and_says_why(page, tmp_path):
    open_tab(page, "Bach Chorales")
    plot_data(page, "#bach-input-roll")
    wait_idle(page, "#tab-bach")
    before = plot_data(page, "#bach-input-roll")
    broken = tmp_path / "carol.mid"
    broken.write_bytes(b"MThd this is no MIDI file")
    page.locator("#bach-upload input[type=file]").set_input_files(str(broken))
    toast = page.locator("[data-testid='toast-body'].error").first
    toast.wait_for()
    assert "carol.mid" in toast.inner_text()
    messages = page.locator("#bach-import-messages")
    messages.get_by_text("could not be imported").wait_for()
    wait_idle(page, "#tab-bach")
    assert "Error" not in page.locator("#tab-bach").inner_text()  # no Gradio "Error" over a component
    assert plot_data(page, "#bach-input-roll") == before  # the measure shown is kept
