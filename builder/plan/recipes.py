"""How builder carries out each step kind, as a revision number that is part of every step key.

A step's key covers its inputs and its parents, but the layer also depends on
*how* builder turns those inputs into work: the step's shell script, its
mounts, its environment, the LLB ops around it.  When a builder release
changes that for a kind, the engine rebuilds the step although its inputs are
the same; bumping the kind's revision here changes its key (and so the keys
after it), so ``builder plan`` predicts that rebuild instead of a cache hit.

The golden LLB test (``tests/engines/test_llb_golden.py``) enforces it: a step
whose vertex digest changed while its key did not fails the test and names the
revision to bump.
"""

from __future__ import annotations

from types import MappingProxyType

from builder.plan.model import StepKind

# 2 (python, pip, conda): uv, py-rattler and pyyaml pinned, one tools folder per version.
# 3 (pip): the offline-first bookkeeping runs in one Python process instead of ten shell commands.
# 3 (python), 4 (pip): uv comes from its wheel through uv_boot.py (pip only when that cannot work).
# 2 (dockerfile): the frontend gets the planned Dockerfile text and the context as LLB inputs.
# 2 (pre_build, shell): the command list runs as one bash script with set -e (state carries over).
# 2 (files): the project files are several chained layers (builder.plan.file_layers), not one copy.
# 4 (python), 5 (pip), 3 (conda): cache mounts scoped per project; uv runs only as a private copy checked by sha256.
# 3 (files): with MergeOp the step is observed at the merge onto the layers below, not at its copy on scratch.
# 5 (python), 6 (pip), 4 (conda): tools runs: only a run that runs no project code writes the tools mounts;
#   the step sees checked copies read-only; py-rattler from wheels pinned by sha256; channel credentials as a secret.
RECIPES = MappingProxyType(
    {
        StepKind.BASE: 1,
        StepKind.PYTHON: 5,
        StepKind.PRE_BUILD: 2,
        StepKind.APT: 1,
        StepKind.CONDA: 4,
        StepKind.PIP: 6,
        StepKind.FILES: 3,
        StepKind.SHELL: 2,
        StepKind.RUNTIME: 1,
        StepKind.CONFIG: 1,
        StepKind.DOCKERFILE: 2,
    }
)
