"""The spec schema. The folder mirrors the YAML tree: one module per top-level section."""

from rscale.compiler.spec.root import SPEC_VERSION, Spec

__all__ = ["SPEC_VERSION", "Spec"]
