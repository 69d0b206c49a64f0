"""amldebug: debug an Azure ML scoring script inside its local image, from VS Code."""

__version__ = "0.1.0"
