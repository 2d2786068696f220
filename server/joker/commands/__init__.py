"""Sub-commands of `joker`, one module each (see joker.cli)."""
