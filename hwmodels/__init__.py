"""What it runs on: hardware specs as data, device models (GPU roofline, FPGA, LUT Tensor Core),
links and collectives, energy. Depends at most on ``workloads``."""

from hwmodels.spec import GPUSpec, LinkSpec, hardware_names, list_gpus, load_gpu, load_link

__all__ = ["GPUSpec", "LinkSpec", "hardware_names", "list_gpus", "load_gpu", "load_link"]
