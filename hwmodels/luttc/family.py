"""Registers LUT Tensor Core GPU variants as a device family (see :mod:`hwmodels.registry`)."""

from hwmodels.luttc.device import load_lut_gpu
from hwmodels.luttc.variants import lut_gpu_names
from hwmodels.registry import register_family

register_family("luttc", lut_gpu_names, load_lut_gpu, "GPUs whose tensor cores are LUT Tensor Core tiles "
                "(Mo et al., ISCA 2025)")
