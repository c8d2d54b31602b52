"""Study configuration: typed, frozen, validated once (schema.py), loaded from YAML with locations (load.py)."""
