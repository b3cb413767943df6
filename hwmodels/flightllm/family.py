"""Registers FlightLLM FPGAs as a device family (see :mod:`hwmodels.registry`)."""

from hwmodels.flightllm.device import load_fpga
from hwmodels.flightllm.spec import fpga_names
from hwmodels.registry import register_family

register_family("flightllm", fpga_names, load_fpga, "FlightLLM on Xilinx FPGAs (Zeng et al., FPGA 2024)")
