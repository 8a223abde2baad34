"""Datasets in and out of the review app: export (approved pairs to files, with splits
and a dataset card), import (other datasets' pairs into the review queue), and the
pages, forms and URLs behind them. Import from the subpackages: `review.datasets.export`
and `review.datasets.imports`."""
