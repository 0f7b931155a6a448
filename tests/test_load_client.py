"""benchmarks/load.py's visitors: the light REST client gets what gradio_client gets, files included."""
from __future__ import annotations

import pytest

from benchmarks import load


def test_rest_client_answers_like_the_app_and_downloads_files(app_server):
    client = load.RestClient(app_server.url)
    image, table = client.predict("arvae", "[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]", api_name="/sprites_decode")
    load.check_png(image)
    assert "measured" in table
    figure, *rest = client.predict("arvae", "[" + ", ".join(["0.5"] * 32) + "]", 9, api_name="/folk_traverse")
    assert figure["type"] == "plotly" and all(wav[:4] == b"RIFF" for wav in rest[:4])


def test_rest_client_raises_the_apps_message_for_a_bad_request(app_server):
    with pytest.raises(RuntimeError, match="sprites_decode.*latent code must be a JSON list of 10 numbers"):
        load.RestClient(app_server.url).predict("arvae", "[1, 2", api_name="/sprites_decode")


def test_a_small_mixed_load_run_has_no_errors(app_server):
    records = load.run_load(app_server.url, clients=3, requests=4, seed=1)
    assert len(records) == 12 and not [r["error"] for r in records if r["error"]]
    report = load.summarize(records)
    assert sum(row["requests"] for row in report["actions"].values()) == 12
