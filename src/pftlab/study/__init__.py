"""The reproduction study: every benchmark x every method x seeds, resumable, ending in Table 2 and a report.

plan: which cells (one run_experiment per benchmark and seed) with which configs;
sweep: run the unfinished cells, reuse the finished ones; report: tables, figures, report.md.
"""
