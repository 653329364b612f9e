"""What every step module reads: the config, its dependencies and the project files.

The project walk happens once, lazily, the first time a step asks for the
files (a plan without ``files`` and without a Dockerfile never walks).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from builder.config.model import Config
from builder.deps.model import ResolvedDependencies
from builder.diagnostics import Diagnostic
from builder.plan.fileset import FileRules, FileSelection, select_files
from builder.plan.protocols import StatSource

APP_DIR = "/app"
#: Where the default (Cortex) runtime's apps live and run from, as on Cerebrium.
CORTEX_DIR = "/cortex"
#: Where the runtime step puts the server files builder provides (outside the project directory).
RUNTIME_DIR = "/opt/builder/runtime"
VENV = "/opt/venv"
CONDA_PREFIX = "/opt/conda"


def file_rules(config: Config) -> FileRules:
    """The ``files`` step's selection rules: the deployment's include/exclude; the config file never ships."""
    d = config.deployment
    return FileRules(tuple(d.include), tuple(d.exclude), (config.path.name,))


@dataclass(slots=True)
class PlanContext:
    """Inputs shared by the step modules while one plan is made (mutable scratch, not part of the plan)."""

    config: Config
    deps: ResolvedDependencies
    stat_source: StatSource | None = None
    keys: dict[str, str] = field(default_factory=dict)  # filled in build order; read by the config step
    notes: list[Diagnostic] = field(default_factory=list)
    present: set[str] = field(default_factory=set)  # kinds that produced inputs (read by the config step)
    _selection: FileSelection | None = None

    @property
    def dockerfile_mode(self) -> bool:
        runtime = self.config.runtime
        return runtime is not None and bool(runtime.dockerfile_path)

    @property
    def app_dir(self) -> str:
        """Where the project files go and commands run: ``/cortex`` for the default runtime, else ``/app``."""
        return CORTEX_DIR if self.config.default_runtime is not None else APP_DIR

    @property
    def rules(self) -> FileRules:
        return file_rules(self.config)

    def files(self) -> FileSelection:
        """The selected project files (walked once)."""
        if self._selection is None:
            self._selection = select_files(self.config.project_dir, self.rules, stat_source=self.stat_source)
            self.notes.extend(self._selection.notes)
        return self._selection

    def warn(self, key_path: str, message: str, hint: str | None = None) -> None:
        self.notes.append(Diagnostic("warning", key_path, message, hint=hint))
