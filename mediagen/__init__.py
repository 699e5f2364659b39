"""Mediagen: prompt in, stored and playable media asset out."""

__version__ = "0.1.0"
