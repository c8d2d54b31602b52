"""Declarative search spaces: immutable parameter kinds, a YAML compiler and one sampling function."""
from searchlab.space.compile import compile_space
from searchlab.space.params import (Branch, CategoricalParam, FixedParam, FloatParam, Group, IntParam, within)
from searchlab.space.sample import cheapest_config, probe_configs, sample_config, searchable_params

__all__ = ["Branch", "CategoricalParam", "FixedParam", "FloatParam", "Group", "IntParam", "cheapest_config",
           "compile_space", "probe_configs", "sample_config", "searchable_params", "within"]
