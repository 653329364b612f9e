"""The validation context: diagnostics with lines, and the generic option pass.

:class:`Context` knows where each key is written (from ``builder.config.lines``)
and turns a section table into checked values using the tables in
``builder.config.spec``: aliases, older spellings, unknown keys with "did you
mean", then one :func:`~builder.config.checks.check_value` per option.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from builder.config import spec
from builder.config.checks import check_value, toml_literal, toml_type
from builder.config.lines import join_key
from builder.diagnostics import Diagnostic, Diagnostics, did_you_mean

# The older CLI wrote include/exclude as one string: "[./*, main.py]".
_LEGACY_LIST = re.compile(r"^\s*\[(.*)\]\s*$", re.DOTALL)


@dataclass
class Context:
    """Collects diagnostics for one file, placing each on its key's line."""

    diagnostics: Diagnostics
    lines: dict[str, int] = field(default_factory=dict)

    # -- reporting -------------------------------------------------------
    def line(self, parts: Sequence[str]) -> int | None:
        """The line of ``parts`` or of its closest written parent."""
        for end in range(len(parts), 0, -1):
            found = self.lines.get(join_key(parts[:end]))
            if found is not None:
                return found
        return None

    def error(self, parts: Sequence[str], message: str, *, hint: str | None = None) -> None:
        """Report an error at ``parts`` (on its line)."""
        self.diagnostics.error(join_key(parts), message, line=self.line(parts), hint=hint)

    def warning(self, parts: Sequence[str], message: str, *, hint: str | None = None) -> None:
        """Report a warning at ``parts`` (on its line)."""
        self.diagnostics.warning(join_key(parts), message, line=self.line(parts), hint=hint)

    def failed(self, parts: Sequence[str]) -> bool:
        """Whether an error was reported at or under ``parts``."""
        prefix = join_key(parts)
        return any(d.key_path == prefix or d.key_path.startswith(prefix + ".") for d in self.diagnostics.errors)

    def sorted(self) -> tuple[Diagnostic, ...]:
        """Diagnostics in file order (those without a line last), stable otherwise."""
        return tuple(sorted(self.diagnostics, key=lambda d: (d.line is None, d.line or 0)))

    # -- shapes ----------------------------------------------------------
    def table(self, parts: Sequence[str], value: object) -> dict[str, Any]:
        """``value`` if it is a table; otherwise report it and use an empty one."""
        if isinstance(value, dict):
            return value
        self.error(parts, f"must be a table ([{join_key(parts)}]), not {toml_type(value)}")
        return {}

    # -- the generic option pass ------------------------------------------
    def options(
        self,
        section: spec.Section,
        base: list[str],
        table: Mapping[str, Any],
        *,
        legacy_list_strings: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Checked values of the options written in ``table`` (canonical names)."""
        written = self._canonical_keys(section, base, table)
        values: dict[str, Any] = {}
        for name, (key, written_value) in written.items():
            option = section.options[name]
            value: object = written_value
            if name in legacy_list_strings and isinstance(value, str) and _LEGACY_LIST.match(value):
                value = self._legacy_list([*base, key], value)
            checked = check_value(option, value)
            if checked.ok:
                values[name] = checked.value
            else:
                assert checked.message is not None
                self.error([*base, key], checked.message, hint=checked.hint)
        return values

    def _canonical_keys(
        self, section: spec.Section, base: list[str], table: Mapping[str, Any]
    ) -> dict[str, tuple[str, Any]]:
        aliases = {a: o.name for o in section.options.values() for a in o.aliases}
        written: dict[str, tuple[str, Any]] = {}
        for key, value in table.items():
            if key in section.options:
                name = key
            elif key in aliases:
                name = aliases[key]
            elif (section.path, key) in spec.LEGACY_ALIASES:
                name = spec.LEGACY_ALIASES[(section.path, key)]
                self.warning([*base, key], f"is an older spelling of {name}; read as {name}", hint=f"rename it {name}")
            else:
                self.unknown(section, base, key, value)
                continue
            if name in written:
                self._both_spellings(base, written[name], (key, value))
                continue
            written[name] = (key, value)
        return written

    def _both_spellings(self, base: list[str], first: tuple[str, Any], second: tuple[str, Any]) -> None:
        (key1, value1), (key2, value2) = first, second
        if value1 == value2 and type(value1) is type(value2):
            self.warning([*base, key2], f"repeats {key1} with the same value", hint=f"remove one of {key1} and {key2}")
        else:
            self.error(
                [*base, key2],
                f"disagrees with {key1} ({toml_literal(value2)} vs {toml_literal(value1)}); "
                "they are two spellings of one option",
                hint=f"keep only {key1}",
            )

    def _legacy_list(self, parts: list[str], value: str) -> list[str]:
        match = _LEGACY_LIST.match(value)
        assert match is not None
        items = [item.strip().strip("\"'").strip() for item in match.group(1).split(",")]
        items = [item for item in items if item]
        spelled = ", ".join(f'"{item}"' for item in items)
        self.warning(
            parts, f"is an older string form of an array; read as [{spelled}]", hint=f"write {parts[-1]} = [{spelled}]"
        )
        return items

    def unknown(self, section: spec.Section, base: list[str], key: str, value: object) -> None:
        """Warn about a key ``section`` does not define, with the best hint we have."""
        parts = [*base, key]
        what = "section" if isinstance(value, dict) else "key"
        if key in spec.LEGACY_IGNORED:
            self.warning(parts, f"is not used by builder; ignored ({spec.LEGACY_IGNORED[key]})")
            return
        home = spec.section_for_option(key)
        if home is not None and home is not section and not isinstance(value, dict):
            self.warning(
                parts, f"is not an option of {section.header}; ignored", hint=f"{key} belongs in {home.header}"
            )
            return
        candidates = [*section.options, *(a for o in section.options.values() for a in o.aliases)]
        guess = did_you_mean(key, candidates)
        self.warning(parts, f"unknown {what}; ignored", hint=f"did you mean {guess}?" if guess else None)
