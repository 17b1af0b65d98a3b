"""Detection: replay today's model on a baseline's prompts and decide whether behaviour changed.

Owns baselines, the replay engine and the offline model it can call, embeddings, the behavioural
dimensions, the paired statistics, scoring into a drift report, the Great Expectations checks over it,
silent-change probes and `compare` of recorded outputs. May import persistence, versioning, traffic
and alerts.
"""
