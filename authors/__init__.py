"""Reading the authors' released checkpoints and palette estimator into this project's formats."""
