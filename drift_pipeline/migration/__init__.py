"""Migration: moving a tenant agent to a new model version only through a gate, and back.

Owns the migration state machine (propose, stage, review, canary, promote, abort), sticky canaries with
their sequential test and the live feed from captured traffic, rollback, deprecation notices and forced
migrations at a version's sunset, staging adapters and the evidence a tenant's compliance team reads.
May import every pillar below it.
"""
