"""The bottom layer: errors, seeding, atomic and checksummed io, weight dicts, the schema base, registries.

Nothing here imports anything else of pftlab's.
"""
