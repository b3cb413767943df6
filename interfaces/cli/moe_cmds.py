"""``genz predict --layout FILE``: an MoE model on a multi-node cluster (prefill and decode pools),
printed as per-node throughput, memory per GPU and the time split. No modelling here: the answer
comes from :func:`genz.moe_cluster.predict_cluster`."""

from __future__ import annotations

import click

from interfaces.cli.common import echo_json


def _ms(s: float) -> str:
    return f"{s * 1e3:,.1f} ms"


def predict_layout(path: str, model: str | None, as_json: bool, profile: str = "auto") -> None:
    """Evaluate the layout file at ``path`` (``model`` overrides the file's model when given)."""
    from dataclasses import replace

    from genz.moe_cluster import load_layout, predict_cluster

    lay = load_layout(path)
    if model:
        lay = replace(lay, model=model)
    r = predict_cluster(lay, profile=profile)
    if as_json:
        echo_json(r.to_dict())
        return
    click.echo(f"{r.model} ({r.precision}) on {r.cluster} ({r.gpu})")
    for role, p in r.pools.items():
        t = p.time
        unit = "input" if role == "prefill" else "output"
        nodes = f"{p.nodes} node{'s' if p.nodes != 1 else ''}"
        click.echo(f"\n{role} pool: {nodes}, {p.gpus} GPUs, EP {p.ep}, expert imbalance {p.imbalance:.3f}")
        per_gpu = p.tokens_per_s_per_node * p.nodes / p.gpus
        click.echo(f"  throughput      {p.tokens_per_s_per_node:,.0f} {unit} tokens/s per node, {per_gpu:,.0f} per GPU "
                   f"(step {_ms(p.step_s)})")
        m = p.memory
        click.echo(f"  memory per GPU  {p.fit_message()}: weights {m['weights'] / 1e9:.1f}, KV cache "
                   f"{m['kv_cache'] / 1e9:.1f}, activations {m['activations'] / 1e9:.1f}, all-to-all buffers "
                   f"{m['buffers'] / 1e9:.2f} GB")
        click.echo(f"  time split      compute {_ms(t['compute_s'])}, intra-node {_ms(t['intra_s'])}, inter-node "
                   f"{_ms(t['inter_s'])}, communication elapsed {_ms(t['comm_s'])}, overlap hidden "
                   f"{_ms(t['hidden_s'])}, engine CPU {_ms(t['cpu_s'])}")
    if r.kv_transfer_s is not None:
        click.echo(f"\nKV transfer prefill -> decode over RDMA: {_ms(r.kv_transfer_s)} per request")
    click.echo(r.basis.get("basis", ""))
