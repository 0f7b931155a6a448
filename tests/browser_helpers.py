"""What the browser tests share: the system's Chromium (never `playwright install`), its launch
flags, the screenshot folder, the two viewport sizes and the page helpers. Importing it skips the
importing module when Playwright or Chromium is missing; the ``browser`` fixture is in conftest.py."""
import contextlib
import os
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api")

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("ARVAE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
VIEWPORT = {"width": 1400, "height": 2700}  # tall instead of full_page screenshots (those hang in headless Chromium)
TIMEOUT_MS = 90_000

if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (tests/run.sh installs it with apt)", allow_module_level=True)


@contextlib.contextmanager
def launch_chromium():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


SIZES = {"desktop": {"width": 1400, "height": 1000}, "phone": {"width": 420, "height": 900}}


def error_toasts(page):
    return [t.inner_text() for t in page.locator("[data-testid='toast-body'].error").all()]


def wait_idle(page, selector):
    """Wait until no status tracker under ``selector`` shows a pending request."""
    page.wait_for_function(
        """sel => { const root = document.querySelector(sel); if (!root) return false;
                    return !Array.from(root.querySelectorAll('[data-testid="status-tracker"]'))
                        .some(e => !e.classList.contains('hide')); }""",
        arg=selector)


def plot_data(page, selector):
    page.wait_for_function(
        "sel => { const p = document.querySelector(sel + ' .js-plotly-plot'); return p && p.data && p.data.length; }",
        arg=selector)
    return page.evaluate("""sel => {
        // arrays may be plain, typed, or Plotly's base64 typed arrays {dtype, bdata, shape}
        const size = {i1: 1, u1: 1, i2: 2, u2: 2, i4: 4, u4: 4, f4: 4, f8: 8};
        const dims = a => {
            if (!a) return [0, 0];
            if (a.bdata !== undefined) {
                if (a.shape) return String(a.shape).split(',').map(Number);
                return [atob(a.bdata).length / size[a.dtype], 0];
            }
            const first = a[0];
            return [a.length, first && first.length !== undefined ? first.length : 0];
        };
        return document.querySelector(sel + ' .js-plotly-plot').data.map(t => ({
            type: t.type, n: dims(t.x)[0], rows: t.z ? dims(t.z)[0] : 0, cols: t.z ? dims(t.z)[1] : 0}));
    }""", selector)


AUDIO_STATS = """async url => {
    const buffer = await (await fetch(url)).arrayBuffer();
    const context = new OfflineAudioContext(1, 1, 22050);
    const audio = await context.decodeAudioData(buffer);
    const samples = audio.getChannelData(0);
    let peak = 0;
    for (let i = 0; i < samples.length; i++) peak = Math.max(peak, Math.abs(samples[i]));
    return {duration: audio.duration, peak: peak};
}"""


def audio_stats(page, selector):
    """Duration and peak of the audio a gr.Audio shows, decoded by the browser itself."""
    page.wait_for_function(
        "sel => { const r = document.querySelector(sel); return r && (r.querySelector('audio[src]') || "
        "r.querySelector('a[download]')); }", arg=selector)
    root = page.locator(selector)
    audio = root.locator("audio[src]")
    url = audio.first.get_attribute("src") if audio.count() else root.locator("a[download]").first.get_attribute("href")
    return page.evaluate(AUDIO_STATS, url)
