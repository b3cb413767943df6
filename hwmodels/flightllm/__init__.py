"""FlightLLM (Zeng et al., FPGA 2024): LLM inference on Xilinx FPGAs, as a device model.

>>> from hwmodels.flightllm import load_fpga
>>> d = load_fpga("u280")
>>> d.spec.mv_macs_per_s() / 1e9    # 2 cores x 1024 INT8 MACs x 225 MHz x 0.8
368.64
>>> float(load_fpga("u280", always_on_chip_decode=False).stream_bandwidth() / 1e9)   # 460 GB/s x 0.35
161.0
"""

from hwmodels.flightllm.device import FlightLLM, FlightLLMOptions, load_fpga
from hwmodels.flightllm.mechanisms import (
    bucket,
    chain_compute_fraction,
    check_weight_bits,
    instruction_count,
    instruction_programs,
    instruction_storage_bytes,
    layer_instructions,
    parse_sparsity,
    stored_weight_bytes,
)
from hwmodels.flightllm.spec import (
    FPGASpec,
    Mechanisms,
    fpga_names,
    list_fpgas,
    load_fpga_spec,
    load_mechanisms,
)

__all__ = ["FPGASpec", "FlightLLM", "FlightLLMOptions", "Mechanisms", "bucket", "chain_compute_fraction",
           "check_weight_bits", "fpga_names", "instruction_count", "instruction_programs", "instruction_storage_bytes",
           "layer_instructions", "list_fpgas",
           "load_fpga", "load_fpga_spec", "load_mechanisms", "parse_sparsity", "stored_weight_bytes"]
