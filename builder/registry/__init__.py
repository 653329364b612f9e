"""Talking to container registries: credentials (:mod:`.credentials`)."""
