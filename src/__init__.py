"""rscale: from one YAML spec to a live endpoint and back, at reasonable scale."""

__version__ = "0.1.0"
