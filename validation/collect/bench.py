"""Timing on the device: CUDA graphs and CUDA events on a GPU, the host clock on the CPU (dry run).

PyTorch is imported lazily (:func:`import_torch`) so that the rest of the project, and this package's
plan and writer, work without it.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

INSTALL_HINT = (
    "the collector needs PyTorch: `pip install 'genz-sim[collect]'` (or `pip install torch`); "
    "a CUDA GPU is needed for real measurements, --dry-run runs on the CPU"
)


def import_torch() -> Any:
    """The ``torch`` module, or ``ValueError`` saying how to install it."""
    try:
        import torch
    except ImportError:
        raise ValueError(INSTALL_HINT) from None
    return torch


@dataclass(frozen=True)
class Timing:
    """Per-operation time of the timed repetitions, in milliseconds (as the files store it)."""

    median_ms: float
    min_ms: float
    max_ms: float
    n_timed: int
    timing: str  # "cudagraph" or "eager"

    def row(self) -> dict:
        return {"time_ms": self.median_ms, "time_ms_min": self.min_ms, "time_ms_max": self.max_ms,
                "n_timed": self.n_timed, "timing": self.timing}


def _timing(samples_ms: Sequence[float], kind: str) -> Timing:
    return Timing(statistics.median(samples_ms), min(samples_ms), max(samples_ms), len(samples_ms), kind)


class Bench:
    """Runs and times operations on one device (``cuda`` or ``cpu``)."""

    def __init__(self, device: str = "cuda", use_graphs: bool | None = None):
        self.torch = import_torch()
        if device.startswith("cuda") and not self.torch.cuda.is_available():
            raise ValueError("device: no CUDA GPU is visible to PyTorch; use --dry-run to run on the CPU")
        self.device = self.torch.device(device)
        self.is_cuda = self.device.type == "cuda"
        if self.is_cuda and self.device.index is None:
            self.device = self.torch.device("cuda", self.torch.cuda.current_device())
        self.use_graphs = self.is_cuda if use_graphs is None else use_graphs and self.is_cuda
        self._threads = self.torch.get_num_threads()
        if not self.is_cuda:
            self.torch.set_num_threads(1)  # tiny dry-run shapes: thread pools only add scheduling noise

    def close(self) -> None:
        """Undo process-wide settings (CPU threads)."""
        self.torch.set_num_threads(self._threads)

    # ------------------------------------------------------------------ basics
    def sync(self) -> None:
        if self.is_cuda:
            self.torch.cuda.synchronize(self.device)

    def free_bytes(self) -> int:
        """Device memory free now (bytes); on the CPU an assumption of 4 GiB (dry-run shapes are tiny)."""
        if self.is_cuda:
            return int(self.torch.cuda.mem_get_info(self.device)[0])
        return 4 << 30

    def l2_bytes(self) -> int:
        """L2 size in bytes (0 on the CPU, where no rotation is needed for the tiny dry-run shapes)."""
        if not self.is_cuda:
            return 0
        props = self.torch.cuda.get_device_properties(self.device)
        return int(getattr(props, "L2_cache_size", 0) or 50 << 20)  # assumption: 50 MiB if torch does not say

    def copies_to_rotate(self, bytes_per_copy: int, budget_fraction: float = 0.25) -> int:
        """Operand copies whose total exceeds 4 x L2, so each operation reads from HBM, within a quarter
        of the free memory."""
        l2 = self.l2_bytes()
        if l2 == 0 or bytes_per_copy <= 0:
            return 1
        want = math.ceil(4 * l2 / bytes_per_copy) + 1
        fit = max(1, int(budget_fraction * self.free_bytes() // bytes_per_copy))
        return max(1, min(want, fit))

    def release(self) -> None:
        if self.is_cuda:
            self.sync()
            self.torch.cuda.empty_cache()

    # ------------------------------------------------------------------ timing
    def _elapsed_ms(self, fn: Callable[[], Any]) -> float:
        if self.is_cuda:
            start = self.torch.cuda.Event(enable_timing=True)
            end = self.torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return float(start.elapsed_time(end))
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3

    def time_eager(self, fn: Callable[[], Any], reps: int, warmup: int) -> Timing:
        """Launch ``fn`` from Python ``reps`` times (after ``warmup`` calls); launch overhead included."""
        for _ in range(warmup):
            fn()
        self.sync()
        return _timing([self._elapsed_ms(fn) for _ in range(reps)], "eager")

    def time_ops(self, ops: Sequence[Callable[[], Any]], reps: int, warmup: int, target_ms: float) -> tuple[Timing, Callable[[], None], int]:
        """Time one operation, back to back, cycling through ``ops`` (one per rotated operand copy).

        On a GPU with graphs, ``inner`` operations (enough for about ``target_ms``, at least one per
        copy) are captured in a CUDA graph; each timed repetition replays it once and divides by
        ``inner``. Returns the timing, a callable that runs one batch of ``inner`` operations (for the
        energy window) and ``inner``.
        """
        for i in range(max(warmup, 1)):
            ops[i % len(ops)]()
        self.sync()
        once = min(self._elapsed_ms(ops[i % len(ops)]) for i in range(min(3, len(ops)) or 1))
        inner = max(len(ops), math.ceil(target_ms / max(once, 1e-4)))
        inner = min(inner, max(len(ops), 1000))
        if not self.use_graphs:
            inner = max(1, min(inner, len(ops)))

        def batch() -> None:  # results are dropped at once, so their memory is reused as in a model
            for j in range(inner):
                ops[j % len(ops)]()

        if not self.use_graphs:
            samples = [self._elapsed_ms(batch) / inner for _ in range(reps)]
            return _timing(samples, "eager"), batch, inner
        graph = self.capture(batch)
        graph.replay()
        self.sync()
        samples = [self._elapsed_ms(graph.replay) / inner for _ in range(reps)]
        return _timing(samples, "cudagraph"), graph.replay, inner

    def capture(self, fn: Callable[[], Any]) -> Any:
        """A CUDA graph of ``fn`` (warmed up on a side stream first, as PyTorch requires)."""
        torch = self.torch
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            fn()
        torch.cuda.current_stream(self.device).wait_stream(stream)
        self.sync()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
        self.sync()
        return graph

    def repeat_for(self, batch: Callable[[], Any], per_batch_ms: float, seconds: float) -> tuple[int, float]:
        """Run ``batch`` back to back for at least ``seconds``; returns (batches run, host seconds)."""
        n = max(1, math.ceil(seconds * 1e3 / max(per_batch_ms, 1e-3)))
        self.sync()
        t0 = time.perf_counter()
        for _ in range(n):
            batch()
        self.sync()
        return n, time.perf_counter() - t0
