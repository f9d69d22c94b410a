"""Training tasks, one per model kind (``config.task``)."""
