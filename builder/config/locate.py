"""Place problems found while planning in the files as the user named them.

Dependency files are read by project-relative path and the config by its bare
name, but the user ran ``builder validate app/``: ``app/requirements.txt:3``
and ``app/cerebrium.toml:12`` are what they can open.  A problem with no file
(a ``paths`` entry or ``dockerfile_path`` that cannot be read) points at its
key in cerebrium.toml, with that key's line.

>>> # located(config, [Diagnostic("error", "cerebrium.dependencies.paths.pip", "file 'r.txt' does not exist")])
>>> # → (Diagnostic(..., file="app/cerebrium.toml", line=9),)
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace

from builder.config.model import Config
from builder.diagnostics import Diagnostic


def located(config: Config, diagnostics: Iterable[Diagnostic]) -> tuple[Diagnostic, ...]:
    """``diagnostics`` with display file names and, for config keys, lines filled in (apply once)."""
    shown = config.source_map.file if config.source_map else str(config.path)
    base = os.path.dirname(shown)
    out = []
    for d in diagnostics:
        if d.file is None or d.file == config.path.name:
            line = d.line
            if line is None and d.key_path.startswith("cerebrium") and config.source_map:
                line = config.source_map.line_of(d.key_path)
            out.append(replace(d, file=shown, line=line))
        elif os.path.isabs(d.file) or not base:
            out.append(d)
        else:
            out.append(replace(d, file=os.path.join(base, d.file)))
    return tuple(out)
