"""Cross-validation folds over kernel shapes keep both runs of a shape together."""

import numpy as np
import pandas as pd
import pytest

from validation.holdout import SHAPE_KEYS, _folds_of, kernel_holdout


def test_runs_of_a_shape_share_a_fold():
    df = pd.DataFrame({"run": ["run1", "run2"] * 6, "dtype": ["bf16"] * 12,
                       "m": np.repeat([1, 2, 4, 8, 16, 32], 2), "n": 64, "k": 64})
    folds = _folds_of(df, SHAPE_KEYS["gemm"], 3, np.random.default_rng(0))
    assert (folds[0::2] == folds[1::2]).all()
    assert set(folds) == {0, 1, 2}


def test_folds_must_be_at_least_two():
    with pytest.raises(ValueError, match="folds"):
        kernel_holdout("validation/data/h200-2026-11-28", folds=1)
