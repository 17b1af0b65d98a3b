"""Versioning: which exact model each tenant agent may call, and how that changed.

Owns the model registry (exact versions, aliases and their history, deprecations), tenants, revisioned
per-agent manifests, the runtime resolver the platform's request path asks, provider discovery (what a
provider lists, where an alias moved) and the scanner that finds aliases in code. May import
persistence. One documented exception: `runtime` asks the migration pillar for an active canary.
"""
