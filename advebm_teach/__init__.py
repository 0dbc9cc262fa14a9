"""advebm-teach: adversarial training for text and energy-based models, as a notebook course."""

from .checkpoints import load_pretrained, load_pretrained_record
from .config import fast_mode, make_task, pick_device, seed_everything
from .models import LSTMLanguageModel, TransformerEnergy
from .teaching.notebook import setup_notebook
from .sampling import sample_lm
from .task import AdditionTask

__all__ = [
    "AdditionTask", "LSTMLanguageModel", "TransformerEnergy", "fast_mode", "load_pretrained",
    "load_pretrained_record", "make_task", "pick_device", "sample_lm", "seed_everything",
    "setup_notebook",
]
__version__ = "0.1.0"
