"""The benchmark of flask-smscode against baselines; run ``bash scripts/bench.sh``."""
