"""Looking at studies: the self-contained HTML report of a run, and best-so-far comparisons of several runs."""
