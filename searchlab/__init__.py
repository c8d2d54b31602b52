"""searchlab: hyperparameter and architecture search for classifiers on small medical image sets."""
from searchlab.errors import SearchlabError

__version__ = "0.1.0"
__all__ = ["SearchlabError", "__version__"]
