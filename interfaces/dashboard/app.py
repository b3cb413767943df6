"""Layout and callbacks of the dashboard (imported only when Dash is installed)."""

from __future__ import annotations

import base64
import math
import tempfile
from functools import lru_cache
from pathlib import Path

import plotly.graph_objects as go
from dash import Dash, Input, Output, State, dcc, html, no_update

from interfaces.dashboard.components import report_view
from interfaces.reports import build_report, load_results
from interfaces.reports.operators import step_operators
from interfaces.reports.predict_report import energy_figure, latency_figure, memory_figure, roofline_figure
from interfaces.reports.style import FIGURE_CONFIG, fmt_bytes, fmt_num, fmt_time, layout

DEFAULTS = {"model": "llama-3-8b", "hardware-a": "h200-sxm", "hardware-b": "h100-sxm", "precision": "bf16",
            "tp": 1, "pp": 1, "ep": 1, "batch": 8, "prompt": 1024, "output": 256, "slo-ttft-ms": 500,
            "slo-tpot-ms": 50}
NUMBER_INPUTS = ("tp", "pp", "ep", "batch", "prompt", "output", "slo-ttft-ms", "slo-tpot-ms")
_CSS = ("body{font-family:Helvetica,Arial,sans-serif;margin:0;background:#fafafa;color:#222}"
        "table.data{border-collapse:collapse;font-size:13px}table.data td,table.data th"
        "{border:1px solid #ddd;padding:4px 8px}table.data th{background:#f0f0f0}"
        "label{font-size:12px;color:#555;display:block;margin-top:8px}"
        ".ok{color:#1e7d32;font-weight:600}.bad{color:#C0392B;font-weight:600}")


@lru_cache(maxsize=1)
def hardware_options() -> list[str]:
    """Canonical names of every device (aliases folded)."""
    from hwmodels.registry import all_hardware_names, load_device

    names = set()
    for n in all_hardware_names():
        try:
            names.add(load_device(n).name)
        except ValueError:
            continue
    return sorted(names)


@lru_cache(maxsize=1)
def model_options() -> list[str]:
    from workloads import list_models

    return list_models()


@lru_cache(maxsize=1)
def precision_options() -> list[str]:
    from workloads import precision_names

    return [*precision_names(), "w8a8", "w4a16", "w4a8", "w2a8", "w8a8kv8"]


def _field(label: str, component) -> html.Div:
    return html.Div([html.Label(label), component])


def _number(id_: str, step: int = 1, minimum: int = 1) -> dcc.Input:
    return dcc.Input(id=id_, type="number", value=DEFAULTS[id_], min=minimum, step=step, debounce=True,
                     style={"width": "100%"})


def controls() -> html.Div:
    dd = {"clearable": False, "style": {"fontSize": "13px"}}
    return html.Div([
        html.H4("What-if", style={"margin": "4px 0"}),
        _field("model", dcc.Dropdown(model_options(), DEFAULTS["model"], id="model", **dd)),
        _field("hardware A", dcc.Dropdown(hardware_options(), DEFAULTS["hardware-a"], id="hardware-a", **dd)),
        _field("compare with hardware B (clear to hide)",
               dcc.Dropdown(hardware_options(), DEFAULTS["hardware-b"], id="hardware-b", clearable=True,
                            style={"fontSize": "13px"})),
        _field("precision", dcc.Dropdown(precision_options(), DEFAULTS["precision"], id="precision", **dd)),
        html.Div([_field("tensor parallel", _number("tp")), _field("pipeline", _number("pp")),
                  _field("expert parallel", _number("ep"))],
                 style={"display": "grid", "gridTemplateColumns": "1fr 1fr 1fr", "gap": "6px"}),
        html.Div([_field("batch", _number("batch")), _field("prompt tokens", _number("prompt")),
                  _field("output tokens", _number("output"))],
                 style={"display": "grid", "gridTemplateColumns": "1fr 1fr 1fr", "gap": "6px"}),
        html.Div([_field("SLO: TTFT (ms)", _number("slo-ttft-ms", minimum=0)),
                  _field("SLO: TPOT (ms)", _number("slo-tpot-ms", minimum=0))],
                 style={"display": "grid", "gridTemplateColumns": "1fr 1fr", "gap": "6px"}),
        dcc.Checklist([{"label": " CUDA graphs", "value": "graphs"}], ["graphs"], id="cuda-graphs",
                      style={"marginTop": "10px", "fontSize": "13px"}),
    ], style={"width": "300px", "flex": "none", "padding": "12px", "background": "#fff",
              "borderRight": "1px solid #ddd", "minHeight": "100vh"})


def _graph(id_: str) -> dcc.Graph:
    return dcc.Graph(id=id_, figure=layout(go.Figure()), config=FIGURE_CONFIG)


def whatif_panel() -> html.Div:
    return html.Div([
        html.Div(id="message", style={"color": "#C0392B", "fontWeight": 600, "minHeight": "1em"}),
        html.Div(id="numbers"),
        html.Div([html.Div(_graph("roofline-a"), style={"flex": "1", "minWidth": "420px"}),
                  html.Div(_graph("roofline-b"), id="roofline-b-box", style={"flex": "1", "minWidth": "420px"})],
                 style={"display": "flex", "flexWrap": "wrap", "gap": "8px"}),
        _graph("latency"), _graph("energy"), _graph("memory"),
    ], style={"flex": "1", "padding": "12px", "minWidth": "0"})


def results_panel(results: list[str]) -> html.Div:
    return html.Div([
        html.P("Open a results file written by genz predict --json, sweep, simulate, placement, search or validate "
               "(.json, .csv, .parquet)."),
        dcc.Dropdown(results, results[0] if results else None, id="results-path", placeholder="preloaded files",
                     style={"maxWidth": "700px"}),
        dcc.Upload(html.Div(["Drop a results file here or ", html.A("choose one")]), id="upload",
                   style={"border": "2px dashed #aaa", "borderRadius": "6px", "padding": "18px", "margin": "10px 0",
                          "textAlign": "center", "maxWidth": "660px", "background": "#fff"}),
        html.Div(id="results-message", style={"color": "#C0392B", "fontWeight": 600}),
        dcc.Loading(html.Div(id="results-view")),
    ], style={"padding": "12px 20px"})


def predict_pair(values: dict) -> list[dict]:
    """Predictions of hardware A (and B if chosen) for the control values; raises ValueError."""
    import genz

    common = {k: int(values[k]) for k in ("batch", "prompt", "output", "tp", "pp", "ep")}
    out = []
    for hw in (values["hardware-a"], values.get("hardware-b")):
        if hw:
            out.append(genz.predict(values["model"], hw, precision=values["precision"],
                                    cuda_graphs=values["cuda_graphs"], **common).to_dict())
    return out


def _slo_cell(value_s: float, target_ms) -> html.Td:
    if target_ms is None or not isinstance(target_ms, int | float) or target_ms <= 0:
        return html.Td(fmt_time(value_s))
    ok = value_s * 1e3 <= target_ms
    return html.Td([fmt_time(value_s), html.Span(" meets SLO" if ok else " misses SLO",
                                                 className="ok" if ok else "bad")])


def numbers_table(preds: list[dict], slo_ttft_ms, slo_tpot_ms) -> html.Table:
    """Key numbers of A (and B, with B / A) as a table; cells have ids num-a-<key>, num-b-<key>."""
    rows = [("ttft", "time to first token", "ttft_s", fmt_time), ("tpot", "time per output token", "tpot_s", fmt_time),
            ("e2e", "end-to-end latency", "e2e_s", fmt_time),
            ("throughput", "throughput", "throughput_tok_s", lambda v: fmt_num(v, "tok/s")),
            ("memory", "memory per device", "memory_bytes", fmt_bytes),
            ("energy", "energy per token", "energy_per_token_j", lambda v: f"{v:.3g} J"),
            ("power", "mean power per device", "power_w", lambda v: f"{v:.0f} W")]
    head = [html.Th("")] + [html.Th(f"{'AB'[i]}: {p['hardware']}") for i, p in enumerate(preds)]
    if len(preds) == 2:
        head.append(html.Th("B / A"))
    body = []
    for key, label, field, fmt in rows:
        cells = [html.Td(label)]
        for i, p in enumerate(preds):
            if key in ("ttft", "tpot"):
                cell = _slo_cell(p[field], slo_ttft_ms if key == "ttft" else slo_tpot_ms)
            else:
                cell = html.Td(fmt(p[field]))
            if key == "memory":
                cell.children = [cell.children, html.Span(" fits" if p["fits"] else " does not fit",
                                                          className="ok" if p["fits"] else "bad")]
            cell.id = f"num-{'ab'[i]}-{key}"
            cells.append(cell)
        if len(preds) == 2:
            a, b = preds[0][field], preds[1][field]
            cells.append(html.Td(f"{b / a:.2f}x" if a and math.isfinite(a) and math.isfinite(b) else "n/a"))
        body.append(html.Tr(cells))
    basis = [html.Tr([html.Td("basis"), *[html.Td(p.get("basis", "").removeprefix("basis: "), id=f"num-{'ab'[i]}-basis",
                                                   style={"fontSize": "85%"}) for i, p in enumerate(preds)]])]
    return html.Table([html.Thead(html.Tr(head)), html.Tbody(body + basis)], className="data",
                      style={"background": "#fff", "margin": "6px 0"})


def build_app(results: list[str]) -> Dash:
    offered = frozenset(results)
    app = Dash(__name__, title="genz what-if")
    app.index_string = app.index_string.replace("{%css%}", "{%css%}<style>" + _CSS + "</style>")
    app.layout = html.Div([
        html.Div(html.H2("genz: LLM inference what-if", style={"margin": "0", "fontSize": "20px"}),
                 style={"background": "#1f3b57", "color": "#fff", "padding": "10px 18px"}),
        dcc.Tabs([
            dcc.Tab(label="What-if", value="whatif",
                    children=html.Div([controls(), whatif_panel()], style={"display": "flex"})),
            dcc.Tab(label="Results file", value="results", children=results_panel(results)),
        ], value="whatif", id="tabs"),
    ])

    inputs = [Input("model", "value"), Input("hardware-a", "value"), Input("hardware-b", "value"),
              Input("precision", "value"), *[Input(k, "value") for k in NUMBER_INPUTS], Input("cuda-graphs", "value")]

    @app.callback(Output("numbers", "children"), Output("roofline-a", "figure"), Output("roofline-b", "figure"),
                  Output("roofline-b-box", "style"), Output("latency", "figure"), Output("energy", "figure"),
                  Output("memory", "figure"), Output("message", "children"), inputs)
    def update(model, hw_a, hw_b, precision, tp, pp, ep, batch, prompt, output, slo_ttft, slo_tpot, graphs):
        values = {"model": model, "hardware-a": hw_a, "hardware-b": hw_b, "precision": precision, "tp": tp, "pp": pp,
                  "ep": ep, "batch": batch, "prompt": prompt, "output": output, "cuda_graphs": "graphs" in (graphs or [])}
        missing = [k for k in ("model", "hardware-a", "precision", "tp", "pp", "ep", "batch", "prompt", "output")
                   if values[k] in (None, "")]
        if missing:
            return (no_update,) * 7 + (f"set {', '.join(missing)} (whole numbers >= 1)",)
        try:
            preds = predict_pair(values)
            ops = [step_operators(p) for p in preds]
        except ValueError as exc:
            return (no_update,) * 7 + (str(exc),)
        labels = [f"{'AB'[i]}: {p['hardware']}" for i, p in enumerate(preds)]
        roofs = [roofline_figure(o, f"Roofline, {lab}") for o, lab in zip(ops, labels, strict=True)]
        box = {"flex": "1", "minWidth": "420px", "display": "block" if len(preds) == 2 else "none"}
        fits_msg = "" if all(p["fits"] for p in preds) else "does not fit in memory on " + ", ".join(
            p["hardware"] for p in preds if not p["fits"]) + " (numbers still shown)"
        return (numbers_table(preds, slo_ttft, slo_tpot), roofs[0], roofs[1] if len(roofs) == 2 else layout(go.Figure()),
                box, latency_figure(preds, labels), energy_figure(ops, labels), memory_figure(preds, labels), fits_msg)

    @app.callback(Output("results-view", "children"), Output("results-message", "children"),
                  Input("results-path", "value"), Input("upload", "contents"), State("upload", "filename"))
    def show_results(path, contents, filename):
        from dash import ctx

        try:
            if ctx.triggered_id == "upload" and contents:
                suffix = Path(filename or "results.json").suffix or ".json"
                data = base64.b64decode(contents.split(",", 1)[1])
                with tempfile.NamedTemporaryFile(suffix=suffix, delete=False) as fh:
                    fh.write(data)
                kind, payload = load_results(fh.name)
                Path(fh.name).unlink(missing_ok=True)
            elif path:
                if path not in offered:  # the value comes from the browser: only the files named at start
                    return html.Div(), "cannot show that file: not one of the files given with --results"
                kind, payload = load_results(path)
            else:
                return html.Div(), ""
            return report_view(build_report(kind, payload)), ""
        except (ValueError, KeyError) as exc:
            return html.Div(), f"cannot show that file: {exc}"

    return app
