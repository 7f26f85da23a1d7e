"""imhook receiver: turns IM callbacks into typed values and decisions into replies."""

__version__ = "0.1.0"
