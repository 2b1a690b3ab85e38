"""The compiler: YAML text -> overrides -> validated Spec -> Plan -> emitted ZenML pipeline.

Stages, one module each, imports in one direction: load, overrides, validate, plan, emit.
Nothing here imports torch; only `emit` imports zenml.
"""
