"""numtrans: a readable Transformer engine in NumPy."""

__version__ = "0.1.0"

from . import backends
from .backends import set_num_threads, show_config

__all__ = ["backends", "set_num_threads", "show_config"]
