"""Where evaluations run: in this process, a local process pool, or a Ray cluster.

All three offer ``submit(fn, arg) -> handle`` and ``wait(handles) -> [(handle, result, error)]``
(at least one finished). ``fn`` and ``arg`` must pickle (module-level functions, dataclasses).

Ray: ``address="local"`` starts a private Ray instance on this machine (what the tests use); any
other address (``"auto"``, ``"10.0.0.5:6379"``, ``"ray://head:10001"``) joins an existing cluster
and, unless ``ship_code=False``, uploads this project's packages with the tasks (Ray's
``runtime_env["py_modules"]``) so the workers need only Python and the third-party dependencies.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from typing import Any

from workloads.errors import MissingDependency

__all__ = ["ProcessExecutor", "RayExecutor", "SerialExecutor", "make_executor"]

Done = tuple[Any, Any, BaseException | None]


def _apply(fn: Callable, arg: Any) -> Any:
    return fn(arg)


class SerialExecutor:
    """Evaluate at submission, in this process (``workers=1``; no start-up cost, easy to debug)."""

    name = "serial"
    capacity = 1

    def __init__(self) -> None:
        self._n = 0
        self._done: dict[int, tuple[Any, BaseException | None]] = {}

    def submit(self, fn: Callable, arg: Any) -> int:
        self._n += 1
        try:
            self._done[self._n] = (fn(arg), None)
        except Exception as exc:  # noqa: BLE001 - reported as a failed trial
            self._done[self._n] = (None, exc)
        return self._n

    def wait(self, handles: Sequence) -> list[Done]:
        return [(h, *self._done.pop(h)) for h in handles]

    def close(self) -> None:
        pass


def _load_plugins() -> None:
    """Each worker loads the GENZ_PLUGINS modules, so policies and objectives registered there exist."""
    from genz.plugins import load_plugins

    load_plugins()


class ProcessExecutor:
    """A local pool of ``workers`` processes (forkserver: the project is imported once, in the server)."""

    name = "processes"

    def __init__(self, workers: int) -> None:
        self.capacity = workers
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["optimizers.search.objective", "optimizers.capacity.capacities"])
        self._pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_load_plugins)

    def submit(self, fn: Callable, arg: Any) -> cf.Future:
        return self._pool.submit(_apply, fn, arg)

    def wait(self, handles: Sequence[cf.Future]) -> list[Done]:
        done, _ = cf.wait(handles, return_when=cf.FIRST_COMPLETED)
        return [(f, None if f.exception() else f.result(), f.exception()) for f in done]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor:
    """Tasks on a Ray cluster; ``workers`` caps tasks in flight (default: the cluster's CPUs)."""

    name = "ray"

    def __init__(self, address: str, workers: int | None = None, ship_code: bool = True) -> None:
        try:
            import ray
        except ImportError:
            raise MissingDependency("--ray-address needs Ray: pip install -e \".[ray]\" (or pip install \"ray[default]\")") \
                from None
        self._ray = ray
        kw: dict = {"ignore_reinit_error": True, "include_dashboard": False, "log_to_driver": False}
        if address == "local":
            kw["num_cpus"] = workers or os.cpu_count() or 1
        else:
            _check_reachable(address)
            kw["address"] = address
            if ship_code:
                import genz
                import hwmodels
                import optimizers
                import workloads
                kw["runtime_env"] = {"py_modules": [genz, hwmodels, workloads, optimizers]}
        self._owns = not ray.is_initialized()
        try:
            ray.init(**kw)
        except (ConnectionError, RuntimeError) as exc:
            raise ValueError(f"--ray-address: cannot reach a Ray cluster at {address!r}: {exc}") from None
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.capacity = max(1, workers or cpus)
        self._remote = ray.remote(num_cpus=1)(_apply)

    def submit(self, fn: Callable, arg: Any):
        return self._remote.remote(fn, arg)

    def wait(self, handles: Sequence) -> list[Done]:
        ready, _ = self._ray.wait(list(handles), num_returns=1)
        out = []
        for ref in ready:
            try:
                out.append((ref, self._ray.get(ref), None))
            except Exception as exc:  # noqa: BLE001 - a task that raised: reported as a failed trial
                out.append((ref, None, exc))
        return out

    def close(self) -> None:
        if self._owns:
            self._ray.shutdown()


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast (``ValueError``) when a ``host:port`` or ``ray://host:port`` Ray address does not
    answer a TCP connect within ``timeout_s``: Ray itself retries for minutes."""
    import socket

    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--ray-address: expected 'auto', 'local', HOST:PORT or ray://HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ValueError(f"--ray-address: nothing answers at {host}:{port} ({exc})") from None


def make_executor(workers: int | None = None, ray_address: str | None = None):
    """Ray when ``ray_address`` is given, else a process pool of ``workers`` (default: CPUs),
    else (``workers=1``) this process."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if ray_address:
        return RayExecutor(ray_address, workers)
    n = workers or os.cpu_count() or 1
    return SerialExecutor() if n == 1 else ProcessExecutor(n)
