"""DVC stages: each module reads params.yaml, calls the packages and writes its outputs."""
