"""AR-VAE Explorer: see and hear the latent spaces of AR-VAE and the beta-VAE baseline.

    python app.py          # serves on $GRADIO_SERVER_NAME:$GRADIO_SERVER_PORT (127.0.0.1:7860)

One tab per dataset of the registry (images: 2-d Sprites, Morpho-MNIST; music: Bach chorales,
folk tunes, and any dataset registered in :mod:`arvae.registry`) and an "About & metrics" tab.
This module only lays the app out: each tab is :func:`arvae.ui.tab.build_tab` around an
:class:`arvae.explorer.Explorer` (all computation: models loaded lazily by :mod:`arvae.hub`, the
shipped held-out sample, traversals, surfaces), with the view of the dataset's domain.

Nothing heavy happens at import or launch: models load on first use, per dataset and model.
Every action has a stable ``api_name`` (see README "## API"), e.g. ``/sprites_encode``.

Environment: ``ARVAE_CHECKPOINTS`` (checkpoint folder, default ``./checkpoints``),
``ARVAE_HUB_REPO`` (fetch models from the Hub first), ``ARVAE_SOUNDFONT`` (an .sf2 file),
``ARVAE_TORCH_THREADS`` (default 1), ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``.
"""
from __future__ import annotations

import atexit
import ctypes
import logging
import os
import signal
import sys
import threading
import time

import gradio as gr
import torch

from arvae import workers
from arvae.evaluate import metrics_markdown
from arvae import PAPER_URL
from arvae.explorer import explorers
from arvae.glossary import metrics_help_markdown
from arvae.samples import checkpoints_root
from arvae.ui import VIEWS
from arvae.ui.common import LIGHT, clear_value_errors
from arvae.ui.features import name_tools_by_endpoint
from arvae.ui.share import unless_linked, wire_restore
from arvae.ui.tab import build_tab, unavailable_tab

MAX_FILE_SIZE = "20mb"
CSS = """
.pixelated img { image-rendering: pixelated; }
.fill-image img { width: 100%; height: 100%; object-fit: contain; }
.arvae-notice { border-left: 4px solid #e4572e; padding: 6px 12px; background: rgba(228,87,46,0.08); }
.arvae-notation svg { max-width: 100%; height: auto; background: white; }
.arvae-notation h4 { margin: 8px 0 2px 0; }
.arvae-heading h3, .arvae-heading h4 { margin: 0; }
/* tables keep words whole: a wide table scrolls instead */
.prose table { display: block; overflow-x: auto; width: fit-content; max-width: 100%; }
.prose th, .prose td { word-break: keep-all; overflow-wrap: normal; hyphens: none; }
/* long menu entries end in an ellipsis before the caret (the caret sits over the input's right end) */
.wrap-inner input[role="combobox"] { text-overflow: ellipsis; padding-right: 28px; }
@media (max-width: 640px) {
  /* music: the decoded roll stays on top, its sliders right under it, then audio and notation */
  .arvae-edit-row { flex-direction: column; }
  .arvae-edit-row > .column { display: contents; }
  .arvae-edit-row .arvae-sticky { order: -2; }
  .arvae-controls > * { order: -1; }
  .arvae-sticky { position: sticky; top: 0; z-index: 1000; background: var(--background-fill-primary); }
  .prose th, .prose td { padding: 4px 6px; font-size: 0.85em; }
}
"""
# Gradio scopes CSS to its container, so the container's own "overflow: hidden" (which makes it the
# scroller that sticky elements stick to, instead of the page) is changed from the page's head
HEAD = "<style>@media (max-width: 640px) { .gradio-container { overflow: clip !important; } }</style>"

torch.set_num_threads(max(1, int(os.environ.get("ARVAE_TORCH_THREADS", "1"))))

ABOUT = r"""
### AR-VAE in a few sentences
An **attribute-regularized VAE** (Pati & Lerch, *Neural Computing and Applications* 2020) is a VAE whose
latent space is trained so that chosen attributes of the data (a digit's thickness, a melody's note
density, ...) each increase **monotonically along one latent dimension** -- the *regularized dim*.
For a mini-batch, an attribute $a$ and its dim $r$, with $D_r$ and $D_a$ the matrices of pairwise
differences of $z_r$ and of $a$, the regularizer is

$$L_{r,a} = \mathrm{MAE}\big(\tanh(\delta D_r) - \mathrm{sgn}(D_a)\big)$$

and the training loss is $\;\mathcal{L} = \mathcal{L}_{recon} + \beta\,\mathcal{L}_{KLD} + \gamma \sum_l L_{r_l, a_l}$.
Moving $z_r$ then changes the attribute, and little else. The **β-VAE** baseline is the same model with
$\gamma = 0$; for it, each attribute is read from the latent dim sharing the most mutual information with it.

Hyperparameters (paper): β = 4, γ = 10, δ = 1 for images; β = 0.001, γ = 1, δ = 10 for music. The
shipped models depart from them where the paper's recipe did not train in a CPU's schedule (β = 1 for
2-d sprites and Morpho-MNIST; for sprites, orientation as the picture shows it, modulo the shape's
symmetry; the metadata of each model records its recipe).
"""



def build_demo(root=None) -> gr.Blocks:
    """The whole app. Cheap: reads checkpoint headers and the small held-out samples, loads no model."""
    root = checkpoints_root(root)
    by_key = explorers(root)
    with gr.Blocks(title="AR-VAE Explorer", delete_cache=(3600, 7200)) as demo:
        gr.Markdown(f"# AR-VAE Explorer\nLatent spaces where one dimension controls one attribute: "
                    f"[Pati & Lerch, *Attribute-based Regularization of Latent Spaces for VAEs*]({PAPER_URL}). "
                    "Each tab holds one dataset: drag a slider and watch (or hear) that attribute change. "
                    "*About & metrics* explains the method and how well each model learnt each attribute; "
                    "*Use via API* (page footer) lists every action for scripts.")
        first_visits, built = [], {}
        with gr.Tabs(overflow_behavior="wrap") as tabs:
            for key, explorer in by_key.items():
                with gr.Tab(explorer.spec.display_name, id=key, elem_id=f"tab-{key}") as tab:
                    if not explorer.available:
                        unavailable_tab(explorer)
                        continue
                    built[key] = build_tab(explorer, VIEWS[explorer.spec.domain](explorer))
                    fn, inputs, outputs = built[key].first_visit
                    fn = unless_linked(fn, key, by_key)  # a shared link's code stays (ui/share.py)
                    tab.select(fn, inputs, outputs, api_visibility="private", **LIGHT)
                    first_visits.append((fn, inputs, outputs))
            with gr.Tab("About & metrics", id="about", elem_id="tab-about"):
                gr.Markdown(ABOUT, latex_delimiters=[{"left": "$$", "right": "$$", "display": True},
                                                     {"left": "$", "right": "$", "display": False}])
                gr.Markdown(metrics_help_markdown(), elem_id="metrics-help")
                gr.Markdown("### Metrics of the shipped models")
                table = gr.Markdown(metrics_markdown(root), label="Metrics table", elem_id="metrics-table")
                refresh = gr.Button("Refresh metrics", size="sm")

                def about_metrics():
                    return metrics_markdown(root)

                refresh.click(about_metrics, None, table, api_name="about_metrics", **LIGHT)
                demo.load(about_metrics, None, table, api_visibility="private", **LIGHT)
        if first_visits:  # the first tab is shown without a select event: fill it on page load
            fn, inputs, outputs = first_visits[0]
            demo.load(fn, inputs, outputs, api_visibility="private", **LIGHT)
        wire_restore(demo, tabs, built)  # ?tab=...&model=...&z=... opens that view
    name_tools_by_endpoint(demo)  # MCP tools carry the endpoint names
    clear_value_errors(demo)
    demo.explorers = by_key
    return demo


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives every worker thread that contends for malloc an arena of its own (up to 8 per
    core) and keeps what each one freed: under many concurrent visitors the app's RSS grew ~10 % per
    hundred requests without bound. Two arenas keep it flat (benchmarks/load.py). ``MALLOC_ARENA_MAX``
    in the environment wins; other platforms are left alone."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        if not os.environ.get("MALLOC_ARENA_MAX"):
            libc.mallopt(-8, int(arenas))  # M_ARENA_MAX
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return

    def trim_now_and_then():  # hand memory freed after a burst of requests back to the system
        while True:
            time.sleep(10)
            trim(0)

    threading.Thread(target=trim_now_and_then, name="malloc-trim", daemon=True).start()


STOP_GRACE_S = 3.0


def stop_on_sigterm(signum, frame):
    """SIGTERM (a Space restart, ``kill``, a test fixture) stops the server like Ctrl-C: Gradio closes
    cleanly and the atexit cleanup (worker processes, the app's temporary folder) runs. A handler
    stuck in one of the app's threads would keep Python from exiting: after :data:`STOP_GRACE_S`
    the cleanup runs anyway and the process ends."""
    def stop_now():
        atexit._run_exitfuncs()  # the same cleanup as a normal exit: workers, temporary folder
        os._exit(0)

    timer = threading.Timer(STOP_GRACE_S, stop_now)
    timer.daemon = True  # a clean exit does not wait for it
    timer.start()
    raise KeyboardInterrupt


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    limit_malloc_arenas()
    demo = build_demo()
    demo.queue(default_concurrency_limit=2, max_size=64)
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        max_file_size=MAX_FILE_SIZE,
        show_error=True,
        css=CSS,
        head=HEAD,
        theme=gr.themes.Soft(primary_hue="indigo"),
        footer_links=["api", "gradio"],
        mcp_server=True,  # every public endpoint is also an MCP tool (README "Agent tools")
        prevent_thread_lock=True,
    )
    if workers.pool_size():  # heavy actions in worker processes; sliders stay here and never wait for them
        # started once the server answers: on a small machine their imports would delay the first page
        pool = workers.WorkerPool(workers.pool_size(), torch_threads=torch.get_num_threads()).start()
        atexit.register(pool.close)
        workers.install(pool)
    demo.block_thread()


if __name__ == "__main__":
    main()
