import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Tests import the package from the checkout even without `pip install -e .`.
sys.path.insert(0, str(ROOT / "src"))
