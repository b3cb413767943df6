"""Clusters as topology, loaded from ``hwmodels/data/clusters/<name>.json``: nodes of GPUs with a
scale-up domain (NVLink/NVSwitch) and scale-out NICs per GPU, every number with its source.

A file holds ``gpu`` (a GPU name), ``gpus_per_node`` and two link classes, ``scale_up`` (per GPU,
per direction, inside a node) and ``scale_out`` (``nics_per_gpu`` NICs of ``bandwidth`` each, per
direction), each with an ``efficiency`` (the achievable fraction of the datasheet rate) and a
``latency_s``; each as ``{"value": x, "source": "..."}``.

>>> c = load_cluster("h800-deepseek")
>>> c.gpus_per_node, round(c.scale_up_bw / 1e9), round(c.scale_out_bw / 1e9)
(8, 160, 40)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from hwmodels.spec import DATA_DIR, _num, index_data_files, lookup_data_file

CLUSTER_DIR = DATA_DIR / "clusters"


@dataclass(frozen=True)
class ClusterSpec:
    """A node type and its links; bandwidths in bytes/s per direction per GPU, latencies in s."""

    name: str
    gpu: str
    gpus_per_node: int
    scale_up_peak: float
    scale_up_efficiency: float
    scale_up_latency_s: float
    nics_per_gpu: float
    nic_bandwidth: float
    scale_out_efficiency: float
    scale_out_latency_s: float
    description: str = ""
    sources: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def scale_up_bw(self) -> float:
        """Achievable NVLink bytes/s one GPU sends (or receives) inside its node."""
        return self.scale_up_peak * self.scale_up_efficiency

    @property
    def scale_out_bw(self) -> float:
        """Achievable bytes/s one GPU sends (or receives) to other nodes, over all its NICs."""
        return self.nics_per_gpu * self.nic_bandwidth * self.scale_out_efficiency


def parse_cluster(data: dict, where: str = "cluster") -> ClusterSpec:
    """A :class:`ClusterSpec` from a file's dict; ``ValueError`` names the field that is wrong."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a JSON object")
    for key in ("name", "gpu", "gpus_per_node", "scale_up", "scale_out"):
        if key not in data:
            raise ValueError(f"{where}: missing field {key!r}")
    sources = {}

    def get(obj, key, prefix, lo=0.0):
        if not isinstance(obj, dict) or key not in obj:
            raise ValueError(f"{where}.{prefix}: missing field {key!r}")
        v, s = _num(obj[key], f"{where}.{prefix}.{key}", lo)
        sources[f"{prefix}.{key}" if prefix else key] = s
        return v

    gpn = get(data, "gpus_per_node", "")
    if gpn != int(gpn):
        raise ValueError(f"{where}.gpus_per_node: must be an integer, got {gpn}")
    up, out = data["scale_up"], data["scale_out"]
    eff = {k: get(o, "efficiency", k) for k, o in (("scale_up", up), ("scale_out", out))}
    for k, e in eff.items():
        if e > 1:
            raise ValueError(f"{where}.{k}.efficiency: must be in (0, 1], got {e}")
    return ClusterSpec(
        name=str(data["name"]), gpu=str(data["gpu"]), gpus_per_node=int(gpn),
        scale_up_peak=get(up, "bandwidth", "scale_up"), scale_up_efficiency=eff["scale_up"],
        scale_up_latency_s=get(up, "latency_s", "scale_up"),
        nics_per_gpu=get(out, "nics_per_gpu", "scale_out"), nic_bandwidth=get(out, "bandwidth", "scale_out"),
        scale_out_efficiency=eff["scale_out"], scale_out_latency_s=get(out, "latency_s", "scale_out"),
        description=str(data.get("description", "")), sources=sources)


@cache
def _files() -> dict:
    return index_data_files(CLUSTER_DIR)


def cluster_names() -> list[str]:
    """Names of the shipped cluster files."""
    return sorted(_files())


def load_cluster(name: str) -> ClusterSpec:
    """A shipped cluster by name, or a path to a cluster JSON file."""
    return lookup_data_file(name, _files(), parse_cluster, "cluster", cluster_names())
