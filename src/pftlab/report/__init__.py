"""Reports: terminal and Markdown tables, plots."""
