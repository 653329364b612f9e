"""Pure renderers of a plan and its analysis: text, JSON and graphviz dot."""
