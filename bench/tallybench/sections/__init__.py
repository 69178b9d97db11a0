"""One module per part of bench/run. Each run(args, exes, R) puts its
figures in R, the results that report.py turns into the table, and raises
BenchError when its part cannot be measured."""
