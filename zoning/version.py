"""The installed version of zoning (a module of its own: the run record reads it without importing the API)."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("zoning")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
