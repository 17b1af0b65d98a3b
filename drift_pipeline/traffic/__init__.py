"""Traffic: real requests in, anonymised samples out.

Owns the one record schema every source is normalised to (`records`), the litellm capture callback,
ingestion of logs with quarantine (`ingest`), PII scrubbing (`privacy`) and stratified sampling. May
import persistence and versioning (to know which tenant agents exist).
"""
