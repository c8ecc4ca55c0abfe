"""One torch-free file per metric, each declaring its :class:`~rad_bench.metrics.MetricSpec`; all of
them are imported with :mod:`rad_bench.metrics` (and so on the first metric lookup), so a new metric is
one new file here."""
