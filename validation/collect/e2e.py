"""Whole-decoder rows (``e2e.csv``): eager prefill, CUDA-graph decode steps, and eager decode steps."""

from __future__ import annotations

import sys
from collections.abc import Iterator

from validation.collect.bench import Bench
from validation.collect.decoder import Decoder, weight_bytes, weight_params
from validation.collect.energy import EnergyMeter
from validation.collect.plan import E2EPoint, Plan
from workloads import Model

ROUTING_ROUTER = "router"  # MoE tokens go where the router sends them (host waits per expert)
ROUTING_FIXED = "fixed-uniform"  # MoE groups fixed at graph capture: one uniform random top-k draw


def _fits(bench: Bench, dec: Decoder, p: E2EPoint) -> bool:
    length = p.length if p.phase == "prefill" else p.length + 1
    tokens = p.length if p.phase == "prefill" else 1
    need = dec.cache_bytes(p.batch, length) + dec.activation_bytes(p.batch, tokens)
    return need < 0.9 * bench.free_bytes()


def _one_point(bench: Bench, meter: EnergyMeter, plan: Plan, dec: Decoder, p: E2EPoint) -> dict:
    torch, m = bench.torch, dec.m
    vocab_ids = torch.randint(0, m.vocab, (p.batch, p.length if p.phase == "prefill" else 1), device=bench.device)
    routing = None
    with torch.inference_mode():
        if p.phase == "prefill":
            cache = dec.new_cache(p.batch, p.length)
            reps = plan.reps.prefill_long if p.batch * p.length >= 8192 else plan.reps.prefill
            step = lambda: dec.forward(vocab_ids, 0, cache)  # noqa: E731
            t = bench.time_eager(step, reps, plan.reps.warmup)
            routing = ROUTING_ROUTER if m.is_moe else None
            batch, per_s = step, p.batch * p.length / (t.median_ms / 1e3)
        else:
            cache = dec.new_cache(p.batch, p.length + 1)
            graph_mode = p.timing == "cudagraph" and bench.use_graphs
            groups = dec.fixed_groups(p.batch) if graph_mode and m.is_moe else None
            step = lambda: dec.forward(vocab_ids, p.length, cache, groups)  # noqa: E731
            if graph_mode:
                graph = bench.capture(step)
                graph.replay()
                t = bench.time_eager(graph.replay, plan.reps.decode, plan.reps.warmup)
                t = type(t)(t.median_ms, t.min_ms, t.max_ms, t.n_timed, "cudagraph")
                batch = graph.replay
                routing = ROUTING_FIXED if m.is_moe else None
            else:
                t = bench.time_eager(step, plan.reps.prefill, plan.reps.warmup)
                batch = step
                routing = ROUTING_ROUTER if m.is_moe else None
            per_s = p.batch / (t.median_ms / 1e3)
        energy = {"energy_j": None, "power_w": None}
        if p.energy:
            energy = meter.measure(bench, batch, 1, t.median_ms, plan.energy_window_s)
    return {"model": m.name, "phase": p.phase, "batch": p.batch,
            "prompt_len": p.length if p.phase == "prefill" else 0,
            "ctx_len": p.length if p.phase == "decode" else 0, **t.row(), "tokens_per_s": per_s,
            "params": weight_params(m), "routing": routing, **energy}


def e2e_rows(bench: Bench, meter: EnergyMeter, plan: Plan, run: str, skipped: list[str]) -> Iterator[dict]:
    """Every point of ``plan.e2e`` for every model of ``plan.models`` that fits in device memory."""
    torch = bench.torch
    for model in plan.models:
        if not _model_fits(bench, model, skipped):
            continue
        try:
            dec = Decoder(torch, model, bench.device)
        except ValueError as exc:
            skipped.append(f"e2e {model.name}: {exc}")
            continue
        except torch.cuda.OutOfMemoryError:
            skipped.append(f"e2e {model.name}: weights do not fit in device memory")
            bench.release()
            continue
        for p in plan.e2e:
            label = f"e2e {model.name} {p.phase} B={p.batch} len={p.length} {p.timing}"
            if not _fits(bench, dec, p):
                skipped.append(f"{label}: KV cache and activations do not fit in free device memory")
                continue
            try:
                yield {"run": run, **_one_point(bench, meter, plan, dec, p)}
            except torch.cuda.OutOfMemoryError:
                skipped.append(f"{label}: out of device memory")
            except RuntimeError as exc:
                print(f"collect: {label} failed: {exc!r}", file=sys.stderr)
                skipped.append(f"{label}: failed: {exc!r}"[:300])
            finally:
                bench.release()
        del dec
        bench.release()


def _model_fits(bench: Bench, model: Model, skipped: list[str]) -> bool:
    need = weight_bytes(model)
    if need > 0.9 * bench.free_bytes():
        skipped.append(f"e2e {model.name}: bf16 weights ({need / 1e9:.1f} GB) do not fit in free device memory "
                       f"({bench.free_bytes() / 1e9:.1f} GB)")
        return False
    return True
