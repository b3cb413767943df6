"""Engine-style scheduling policies, one file each, registered on import (see docs/architecture.md,
"Add a scheduling policy"): :mod:`~genz.serving.policies.guaranteed_no_evict`,
:mod:`~genz.serving.policies.sglang` and :mod:`~genz.serving.policies.trtllm`. The vLLM-style
``continuous`` and the ``static`` policies live in :mod:`genz.serving.schedulers`."""

from genz.serving.policies import guaranteed_no_evict, sglang, trtllm  # noqa: F401  (registration)
