"""``python -m leaf_plugin.cli ...`` is the ``semilearn`` command."""
from .main import entry_point

entry_point()
