"""dime-pipeline: simulate MRE wave fields, train DIME, and compare it with MMDI."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dime-pipeline")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"
