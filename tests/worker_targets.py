"""Functions the worker-pool tests run in a worker (``tests.worker_targets:...``): a stuck call, a
greedy one and a crash, each taking the worker's explorer first like every pool target."""
import os
import time


def sleep(explorer, seconds: float) -> str:
    time.sleep(seconds)
    return explorer.spec.key


def spin(explorer, seconds: float) -> int:
    """Busy CPU for ``seconds`` (a stuck parser)."""
    end, count = time.process_time() + seconds, 0
    while time.process_time() < end:
        count += 1
    return count


def grab_memory(explorer, megabytes: int) -> int:
    blocks = [bytearray(2**20) for _ in range(megabytes)]  # touched: resident
    time.sleep(5)
    return len(blocks)


def crash(explorer) -> None:
    os._exit(3)
