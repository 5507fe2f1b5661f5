"""Controllers: the work queue, the watch cache, and the runner per kind that writes status
and Events."""
