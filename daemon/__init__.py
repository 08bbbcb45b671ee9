"""The expediente process: configuration, store, job loop, web app, CLI."""

__version__ = "0.1.0"
