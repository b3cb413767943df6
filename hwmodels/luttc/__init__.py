"""LUT Tensor Core (Mo et al., ISCA 2025): the lookup-table mixed-precision GEMM unit and GPU
variants whose tensor cores are LUT tiles.

>>> from hwmodels.luttc import load_lut_gpu
>>> g = load_lut_gpu("a100-lut-4x")
>>> round(g.lut_peak(2) / 1e12)     # 16 tiles x 128 lanes x 8 ops / 2 planes x 108 SMs x 1.41 GHz
1247
"""

from hwmodels.luttc.device import LUTGPU, load_lut_gpu, rescaled_spec
from hwmodels.luttc.unit import (
    WEIGHT_PLANES,
    LUTTile,
    MACUnit,
    Parts,
    load_parts,
    scale_area,
    scale_energy,
    table_entries,
    weight_planes,
)
from hwmodels.luttc.variants import (
    LUTVariant,
    load_variant,
    lut_gpu_names,
    mac_area_per_sm_mm2,
    mac_dp4_per_sm,
    mac_pj_per_op,
)

__all__ = ["LUTGPU", "LUTTile", "LUTVariant", "MACUnit", "Parts", "WEIGHT_PLANES", "load_lut_gpu", "load_parts",
           "load_variant", "lut_gpu_names", "mac_area_per_sm_mm2", "mac_dp4_per_sm", "mac_pj_per_op",
           "rescaled_spec", "scale_area", "scale_energy", "table_entries", "weight_planes"]
