"""The image view of a tab: upload, held-out gallery, encoded and decoded pictures, traversal grids
(Figs. 9/10) and the AR-VAE / beta-VAE comparison. Sizes, upload fitting and value names come
from the registry (``spec.input``, ``spec.value_labels``)."""
from __future__ import annotations

import gradio as gr
import numpy as np

from arvae import workers
from arvae.explorer import MODEL_LABEL, SPAN, check_kind, check_steps, format_z, pretty
from arvae.figures import attribute_lines_figure
from arvae.images import display_scale, png_bytes, side_by_side, traversal_grid
from arvae.ui.common import HEAVY, LIGHT, PRIVATE, attribute_controls, output_file, payload_path, picture_file, \
    user_errors

GALLERY_ITEMS = 12  # one compact page beside the pictures


class ImageView:
    sliders_heading = "#### Attributes: drag to edit the decoded image"
    advanced_label = "Advanced: the other latent dims, the latent code, the prior seed"
    steps_label = "Steps per row"
    input_noun = "an input"
    dim_sliders = True
    decode_after_encode = False  # encoding shows the reconstruction already
    preprocess_source = False  # the picture is read by the registry's input.prepare, which gives clear errors
    traverse_queue = HEAVY  # in a worker process (arvae.workers), like every heavy action

    def __init__(self, explorer):
        self.explorer = explorer
        self.size = explorer.spec.input.size
        self.scale = display_scale(self.size, 84)

    def intro(self, spec) -> str:
        figure = spec.paper_figures.get("traversal")
        return (f"**Start here:** a held-out {spec.display_name} image is already encoded. Drag a slider under "
                f"*Decoded* to change one attribute of it; click another example or upload your own picture. "
                f"Below, every attribute is traversed from −{SPAN:g} to {SPAN:g} along its latent dim"
                f"{f' (paper Fig. {figure})' if figure else ''}.")

    def traversal_heading(self, spec) -> str:
        return (f"### Traversals\nEach row moves one attribute's dim from −{SPAN:g} to {SPAN:g}, all other dims "
                "fixed; the plot shows the attribute **measured** on each decoded image.")

    # ------------------------------------------------------------------ layout
    def input_panel(self, t) -> None:
        ex, key = self.explorer, t.key
        n = len(ex.samples) if ex.has_samples else 0
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=260):
                t.upload = gr.File(label="Upload an image (PNG, JPEG, GIF, BMP, WebP…)", file_types=["image"],
                                   height=130, elem_id=f"{key}-upload")
                with gr.Row():
                    t.index = gr.Number(label="Held-out item #", value=0, precision=0, minimum=0, maximum=max(n - 1, 0),
                                        interactive=bool(n), min_width=90, elem_id=f"{key}-index")
                    t.load = gr.Button("Load", interactive=bool(n), min_width=60, elem_id=f"{key}-load")
                with gr.Row():
                    t.random = gr.Button("Random example", interactive=bool(n), min_width=120)
                    t.prior = gr.Button("Sample from prior", min_width=120)
                with gr.Accordion("Held-out examples (click one)", open=True, visible=bool(n)):
                    t.examples = gr.Dataset(
                        components=[gr.Image(render=False)], type="index", layout="gallery",
                        samples_per_page=GALLERY_ITEMS, show_label=False,
                        samples=[[output_file(f"{key}_heldout_{i}.png", png_bytes(ex.samples.inputs[i], 2))]
                                 for i in range(min(GALLERY_ITEMS, n))],
                        label="Held-out examples", elem_classes=["pixelated", "arvae-gallery"],
                        elem_id=f"{key}-examples")
            with gr.Column(scale=3, min_width=300, elem_id=f"{key}-edit"):
                with gr.Row(equal_height=True, elem_classes=["arvae-sticky"]):  # on phones, stays over the sliders
                    t.source = gr.Image(label="Encoded input", type="filepath", format="png", interactive=False,
                                        height=210, min_width=140, elem_classes=["pixelated", "fill-image"],
                                        elem_id=f"{key}-input")
                    t.output = gr.Image(label="Decoded (edit with the sliders)", format="png", interactive=False,
                                        height=210, min_width=140, elem_classes=["pixelated", "fill-image"],
                                        elem_id=f"{key}-output")
                attribute_controls(t, self.sliders_heading)
                t.info = gr.Markdown(label="Measured attributes", elem_id=f"{key}-info")

    def edit_panel(self, t) -> None:
        t.decoded_outputs = [t.output, t.info]

    def advanced_panel(self, t) -> None:
        pass

    def traversal_panel(self, t) -> None:
        with gr.Row(equal_height=False):
            grid = gr.Image(label="Traversal grid", show_label=False, format="png", interactive=False,
                            min_width=340, elem_id=f"{t.key}-grid")
            lines = gr.Plot(label="Measured attribute along each traversal", min_width=340, elem_id=f"{t.key}-lines")
        t.traversal_outputs = [grid, lines]
        with gr.Accordion("Compare AR-VAE and β-VAE on this input", open=False):
            t.compare = gr.Button("Compare both models", interactive=len(self.explorer.kinds) > 1,
                                  elem_id=f"{t.key}-compare-button")
            compare_img = gr.Image(label="Traversals: AR-VAE (left) and β-VAE (right)", show_label=False,
                                   format="png", interactive=False, elem_id=f"{t.key}-compare")
            t.compare_outputs = [compare_img, gr.Plot(label="Measured attributes, both models")]

    # ------------------------------------------------------------------ showing results
    def encode_outputs(self, t):
        return [t.output, t.z_box, t.info]

    def picture(self, image):
        binary = self.explorer.spec.input.binary
        return picture_file(f"{self.explorer.spec.key}_prior", (image >= 0.5).astype(np.float32) if binary else image)

    def prepared(self, image) -> np.ndarray:
        path = payload_path(image)
        if path is None:
            raise ValueError("no input image yet: upload one, pick an example, or sample from the prior")
        return self.explorer.prepare_upload(path)

    @user_errors("encode the image")
    def encode(self, image, model):
        ex, kind = self.explorer, check_kind(model)
        array = self.prepared(image)
        z = ex.encode(kind, array)
        decoded = ex.decode(kind, z)[0]
        table = ex.attribute_table({"input (measured)": ex.measure(array[None])[0],
                                    "reconstruction (measured)": ex.measure(decoded[None])[0]}, kind)
        return picture_file(f"{ex.spec.key}_{kind}_decoded", decoded), format_z(z), table, z

    def show_decoded(self, t, kind, code, decoded):
        measured = self.explorer.measure(decoded)[0]
        return (picture_file(f"{t.key}_{kind}_decoded", decoded[0]),
                self.explorer.attribute_table({"decoded (measured)": measured}, kind))

    def grid(self, kind, traversal, title):
        labels = [f"{pretty(n)} · z[{d}]" for n, d in zip(self.explorer.spec.attribute_names, traversal.dims)]
        return traversal_grid(traversal.decoded, row_labels=labels, scale=self.scale, title=title,
                              column_labels=[f"{v:+.1f}" for v in traversal.values])

    def show_traversal(self, t, kind, traversal):
        names = self.explorer.spec.attribute_names
        grid = self.grid(kind, traversal, f"{MODEL_LABEL[kind]}: each row sweeps one dim")
        return (picture_file(f"{t.key}_{kind}_traversal", grid),
                attribute_lines_figure(traversal.values, traversal.measured, names, traversal.dims,
                                       title=f"{MODEL_LABEL[kind]}: measured attribute along each row"))

    # ------------------------------------------------------------------ wiring
    def wire_inputs(self, t) -> None:
        ex, key = self.explorer, t.key

        @user_errors("read the uploaded image")
        def prepare(image):
            return picture_file(f"{key}_upload", ex.prepare_upload(payload_path(image)))

        @user_errors("load the held-out example")
        def example(index):
            return picture_file(f"{key}_example", ex.example(index))

        @user_errors("sample from the prior")
        def prior(model, seed):
            kind = check_kind(model)
            return self.picture(ex.decode(kind, ex.prior_code(seed))[0])

        def pick(index):
            return int(index)

        def random_index():
            return int(np.random.default_rng().integers(len(ex.samples)))

        def first_visit(image):
            """Load something to look at when the tab opens empty."""
            if image is not None:
                return gr.skip()
            return example(0) if ex.has_samples else prior("arvae", 0)

        # a bad upload leaves input and output on the previous picture (no "Error" on one of them only),
        # says why in a toast and empties the upload box
        t.upload.upload(prepare, t.upload, t.source, api_name=f"{key}_prepare", show_progress="hidden", **LIGHT
                        ).failure(lambda: None, None, t.upload, **PRIVATE)
        gr.on([t.load.click, t.index.submit], example, t.index, t.source, api_name=f"{key}_example", **LIGHT)
        t.random.click(random_index, None, t.index, **PRIVATE).success(example, t.index, t.source, **PRIVATE)
        t.examples.click(pick, t.examples, t.index, **PRIVATE).success(example, t.index, t.source, **PRIVATE)
        t.prior.click(prior, [t.model, t.seed], t.source, api_name=f"{key}_prior", **LIGHT)
        t.first_visit = (first_visit, t.source, t.source)

    def wire_extras(self, t) -> None:
        ex, names = self.explorer, self.explorer.spec.attribute_names

        @user_errors("compare the models")
        def compare(image, steps):
            steps = check_steps(steps)
            if payload_path(image) is None:
                raise ValueError("no input image yet")
            traversals = workers.run(ex, "compare", self.prepared(image), steps)
            grids = [self.grid(kind, tr, MODEL_LABEL[kind]) for kind, tr in traversals.items()]
            values = next(iter(traversals.values())).values
            figure = attribute_lines_figure(values, {MODEL_LABEL[k]: tr.measured for k, tr in traversals.items()},
                                            names, {MODEL_LABEL[k]: tr.dims for k, tr in traversals.items()},
                                            title="AR-VAE (solid) vs β-VAE (dashed)")
            return picture_file(f"{t.key}_comparison", side_by_side(grids)), figure

        t.compare.click(compare, [t.source, t.steps], t.compare_outputs, api_name=f"{t.key}_compare",
                        preprocess=False, **HEAVY)

