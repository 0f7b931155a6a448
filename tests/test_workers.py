"""The worker pool of heavy actions (arvae.workers): results equal in-process results; a worker
that crashes or goes over its CPU or memory budget is killed and replaced, and its call gets a
clear error while the pool keeps answering; light work in the caller's process goes on while every
worker is busy; closing the pool stops a stuck worker at once."""
import os
import re
import threading
import time

import numpy as np
import pytest

from arvae import workers
from arvae.explorer import explorers
from arvae.music import file_import

ALLOWED = ("arvae.", "tests.worker_targets")
TARGETS = "tests.worker_targets"


@pytest.fixture(scope="module")
def pool():
    pool = workers.WorkerPool(2, allowed=ALLOWED).start()
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def local():
    return explorers()


def test_worker_results_equal_in_process_results(pool, local):
    z = local["folk"].prior_code(7)
    remote = pool.call("folk", "traverse", "arvae", z, 5)
    here = local["folk"].traverse("arvae", z, 5)
    np.testing.assert_array_equal(remote.decoded, here.decoded)
    np.testing.assert_allclose(remote.measured, here.measured, equal_nan=True)
    values, dim_x, dim_y = pool.call("mnist", "surface", "arvae", np.zeros(16, np.float32), "thickness", 3, 8)
    expected, *dims = local["mnist"].surface("arvae", np.zeros(16, np.float32), "thickness", 3, 8)
    assert (dim_x, dim_y) == tuple(dims)
    np.testing.assert_allclose(values, expected, rtol=1e-4, atol=1e-4, equal_nan=True)


def drawing(text: str) -> list[str]:
    """What a score or an engraving holds, without the random ids music21 and verovio give elements."""
    text = re.sub(r'\b(xml:)?id="[^"]*"', "", text)
    return re.findall(r'\b(?:d|transform|points|x|y)="[^"]*"|<(?:pitch|duration|type)>[^<]*', text)


def test_music_traversal_media_from_a_worker_equal_those_made_here(pool, local):
    """The handler's heavy half (figure and audio; MIDI, MusicXML and notation when asked) runs in a worker."""
    folk = local["folk"]
    z = folk.prior_code(11)
    tr = folk.traverse("arvae", z, 4)
    args = (tr.decoded, tr.values, tr.measured, tr.dims, "AR-VAE traversals")
    remote = pool.call("folk", "arvae.music.media:render_traversal", *args)
    here = workers.run(folk, "arvae.music.media:render_traversal", *args)  # no pool installed: in this process
    assert remote.figure.to_plotly_json() == here.figure.to_plotly_json()
    for (rate, samples), (rate_here, samples_here) in zip(remote.audio, here.audio):
        # the same sound whatever either kept synthesizer played before, up to its faint chorus tail
        assert rate == rate_here and samples.shape == samples_here.shape
        assert np.corrcoef(samples.astype(float), samples_here.astype(float))[0, 1] > 0.99
    remote = pool.call("folk", "arvae.music.media:traversal_scores", "arvae", z, 4)
    here = workers.run(folk, "arvae.music.media:traversal_scores", "arvae", z, 4)
    assert remote.midi == here.midi and list(remote.dims) == list(tr.dims)
    for texts, texts_here in ((remote.musicxml, here.musicxml), (remote.svg, here.svg)):
        assert [drawing(t) for t in texts] == [drawing(t) for t in texts_here] and drawing(texts[0])


def test_user_errors_come_back_with_their_type_and_message(pool, tmp_path):
    broken = tmp_path / "broken.abc"
    broken.write_text("no tune here")
    with pytest.raises(file_import.MusicImportError, match="holds no ABC tune"):
        pool.call("folk", "prepare_upload", str(broken), budget=workers.IMPORT)
    with pytest.raises(ValueError, match="steps must be between 2 and 17"):
        pool.call("folk", "traverse", "arvae", np.zeros(32, np.float32), 99)


def _replaced_and_serving(pool, before: int):
    assert pool.replaced == before + 1
    assert len(pool.pids()) == pool.size
    assert pool.call("sprites", f"{TARGETS}:sleep", 0) == "sprites"


def test_a_killed_worker_is_replaced_and_its_call_answered_with_an_error(pool):
    before = pool.replaced
    with pytest.raises(workers.WorkerError, match=r"stopped unexpectedly \(exit code 3\); it was replaced"):
        pool.call("sprites", f"{TARGETS}:crash")
    _replaced_and_serving(pool, before)


def test_over_its_cpu_budget_a_worker_is_killed_with_a_message_naming_the_limit(pool):
    before, started = pool.replaced, time.monotonic()
    budget = workers.Budget("import", cpu_s=1.0, memory_mb=4096)
    with pytest.raises(workers.WorkerError, match=r"import took longer than its limit of 1 s"):
        pool.call("sprites", f"{TARGETS}:spin", 60, budget=budget)
    assert time.monotonic() - started < 10
    _replaced_and_serving(pool, before)


def test_over_its_memory_budget_a_worker_is_killed_with_a_message_naming_the_limit(pool):
    before = pool.replaced
    budget = workers.Budget("heavy action", cpu_s=30, memory_mb=600)
    with pytest.raises(workers.WorkerError, match=r"used more than 600 MB of memory"):
        pool.call("sprites", f"{TARGETS}:grab_memory", 2000, budget=budget)
    _replaced_and_serving(pool, before)


def test_light_work_goes_on_while_every_worker_is_busy(pool, local):
    busy = [threading.Thread(target=pool.call, args=("sprites", f"{TARGETS}:sleep", 3)) for _ in range(pool.size)]
    for thread in busy:
        thread.start()
    time.sleep(0.5)
    started = time.monotonic()
    decoded = local["mnist"].decode("arvae", np.zeros(16, np.float32))  # a slider move, in this process
    assert decoded.shape[0] == 1 and time.monotonic() - started < 2.5  # did not wait for the 3 s calls
    for thread in busy:
        thread.join()


def test_workers_run_nicer_than_the_app_so_its_light_answers_get_a_core(pool):
    pool.call("folk", "traverse", "arvae", np.zeros(32, np.float32), 3)  # every worker has started
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    assert pool.pids() and all(os.getpriority(os.PRIO_PROCESS, pid) == mine + workers.WORKER_NICENESS
                               for pid in pool.pids())


def test_only_functions_of_the_allowed_packages_run():
    with pytest.raises(ValueError, match="not a function of arvae."):
        workers.resolve("os:system")


def test_closing_the_pool_stops_a_stuck_worker_at_once():
    pool = workers.WorkerPool(1, allowed=ALLOWED).start()
    errors = []
    caller = threading.Thread(target=lambda: errors.append(pytest.raises(
        workers.WorkerError, pool.call, "sprites", f"{TARGETS}:sleep", 600)))
    caller.start()
    time.sleep(1.0)
    started = time.monotonic()
    pool.close()
    caller.join(10)
    assert not caller.is_alive() and errors and time.monotonic() - started < 10
    assert pool.pids() == []
