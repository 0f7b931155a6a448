"""The Gradio layer, and the only part of ``arvae`` that imports Gradio: it lays out and wires;
everything it shows is computed by :mod:`arvae.explorer` and drawn by :mod:`arvae.images`,
:mod:`arvae.figures` and :mod:`arvae.music`. :func:`arvae.ui.tab.build_tab` builds every
dataset's tab with the view of its domain (:data:`VIEWS`)."""
from arvae.ui.image import ImageView
from arvae.ui.music import MusicView

VIEWS = {"image": ImageView, "music": MusicView}  # registry domain -> the view of its tabs
