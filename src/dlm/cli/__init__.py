"""The ``dlm`` command line: train, generate, demo."""
