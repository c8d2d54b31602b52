"""Study-file fragments several test files share (importable: tests/ is on sys.path)."""

# A small Zen-NAS space whose parameter count spans ~5k to ~150k, so budgets of 30-40k bite.
TINY_ZEN_MODEL = """
  model:
    kind: zen
    stem: 8
    blocks:
      b1: {type: {choice: [conv, basic, inverted]}, width: {choice: [8, 16, 32]}, depth: {int: [1, 3]}, stride: 2}
      b2: {type: {choice: [basic, bottleneck, none]}, width: {choice: [16, 32, 64]}, kernel: {choice: [3, 5]},
           stride: 2}"""
