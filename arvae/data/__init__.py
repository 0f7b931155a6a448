"""Dataset modules: each exposes ``load_split(split, data_dir=None, max_items=None)``."""
