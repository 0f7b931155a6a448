"""Issue 14's features in a real browser (Playwright + the system's Chromium; never `playwright
install`), at 1400x1000 and 420x900: a click on the attribute pad decodes that point, a whole
melody is decoded and plays, a shared link restores the tab, the model and the code. Screenshots
go to test-output/screenshots/features-*.png."""
import json
from urllib.parse import parse_qs, quote, urlsplit

import numpy as np
import pytest

from browser_helpers import SCREENSHOTS, SIZES, TIMEOUT_MS, audio_stats, error_toasts, plot_data, wait_idle


@pytest.fixture(params=list(SIZES))
def page(request, browser):
    context = browser.new_context(viewport=SIZES[request.param], permissions=["clipboard-read", "clipboard-write"])
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.size_name = request.param
    yield page
    context.close()


def shot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"features-{name}-{page.size_name}.png"))


def current_code(page, key):
    """The tab's current code, read from the link the "copy link" button makes (shown and copied)."""
    box = f"#{key}-link input, #{key}-link textarea"
    previous = page.locator(box).first.input_value()
    page.locator(f"#{key}-copy-link").click()
    page.wait_for_function("([sel, old]) => { const t = document.querySelector(sel); "
                           "return t && t.value.includes('z=') && t.value !== old; }", arg=[box, previous])
    link = page.locator(box).first.input_value()
    assert link.startswith(page.url.split("?")[0]), link
    return json.loads(parse_qs(urlsplit(link).query)["z"][0]), link


def open_panel(page, key, panel):
    accordion = page.locator(f"#{key}-{panel}-panel")
    accordion.locator("button").first.click()
    return accordion


def test_pad_click_decodes_that_point(page, app_server):
    page.goto(app_server.url)
    page.get_by_role("tab", name="Morpho-MNIST").click()
    page.locator("#mnist-output img").wait_for()
    wait_idle(page, "#tab-mnist")
    z, _ = current_code(page, "mnist")
    open_panel(page, "mnist", "pad")
    page.locator("#mnist-pad-button").click()
    page.locator("#mnist-pad img").wait_for()
    wait_idle(page, "#mnist-pad-panel")
    before = page.locator("#mnist-pad-z textarea").input_value()
    drawn = json.loads(before)
    np.testing.assert_allclose(drawn, z, atol=1e-3)  # drawn through the current code, marked there
    pad = page.locator("#mnist-pad img")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    pad.click(position={"x": 0.9 * box["width"], "y": 0.1 * box["height"]})  # right (x high), top (y high)
    page.wait_for_function("old => { const t = document.querySelector('#mnist-pad-z textarea'); "
                           "return t && t.value && t.value !== old; }", arg=before)
    wait_idle(page, "#mnist-pad-panel")
    clicked = json.loads(page.locator("#mnist-pad-z textarea").input_value())
    assert clicked[0] > 2.5 and clicked[1] > 2.5, clicked  # area's dim and length's dim near the corner (+4, +4)
    np.testing.assert_allclose(np.delete(clicked, [0, 1]), np.delete(z, [0, 1]), atol=1e-3)
    plot_data(page, "#mnist-pad-heatmap")
    assert not error_toasts(page)
    page.locator("#mnist-pad").scroll_into_view_if_needed()
    shot(page, "pad")


def test_melody_decodes_and_plays(page, app_server):
    page.goto(app_server.url)
    page.get_by_role("tab", name="Folk").click()
    wait_idle(page, "#tab-folk")
    open_panel(page, "folk", "melody")
    page.locator("#folk-melody-load").click()
    page.wait_for_function("() => { const t = document.querySelector('#folk-melody-tokens textarea'); "
                           "return t && t.value.length > 100; }")
    assert len(json.loads(page.locator("#folk-melody-tokens textarea").input_value())) == 16
    page.locator("#folk-melody-button").click()
    plot_data(page, "#folk-melody-roll")
    stats = audio_stats(page, "#folk-melody-audio")
    assert stats["duration"] >= 32 and stats["peak"] > 0.05, stats  # 16 measures of 2 s, audible
    page.locator("#folk-melody-audio").scroll_into_view_if_needed()
    page.locator("#folk-melody-audio button[aria-label='Play']").click()
    page.locator("#folk-melody-audio button[aria-label='Pause']").wait_for()  # it plays
    page.wait_for_timeout(1000)
    assert not error_toasts(page)
    shot(page, "melody")


def test_a_shared_link_restores_tab_model_and_code(page, app_server):
    z = np.round(np.linspace(-1.5, 1.5, 16), 4).tolist()
    page.goto(f"{app_server.url}?tab=mnist&model=beta-vae&z={quote(json.dumps(z))}")
    page.locator("#mnist-output img").wait_for()
    wait_idle(page, "#tab-mnist")
    page.wait_for_timeout(1500)  # nothing fills the tab over the restored code afterwards
    assert page.get_by_role("tab", name="Morpho-MNIST").get_attribute("aria-selected") == "true"
    assert page.locator("#tab-mnist").get_by_label("β-VAE").is_checked()
    assert not error_toasts(page)
    restored, link = current_code(page, "mnist")
    np.testing.assert_allclose(restored, z, atol=1e-4)
    assert "tab=mnist" in link and "model=beta-vae" in link
    page.locator("#mnist-output").scroll_into_view_if_needed()
    shot(page, "link")
    page.goto(f"{app_server.url}?tab=mnist&z=[1,2]")  # a bad link says what is wrong, the app still works
    page.locator("[data-testid='toast-body'].error").first.wait_for()
    assert any("16 finite numbers" in text for text in error_toasts(page))
